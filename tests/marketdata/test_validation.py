import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketdata.sources import BUNDLED_DATA_DIRECTORY
from marketdata.validation import (
    PriceValidationError,
    read_price_file,
    validate_price_frame,
)

CSV_HEADER = "date,open,high,low,close,adj_close,volume\n"
GOOD_ROWS = [
    "2020-01-02,10.0,11.0,9.5,10.5,10.4,1000",
    "2020-01-03,10.5,11.5,10.0,11.0,10.9,1200",
    "2020-01-06,11.0,11.2,10.8,11.1,11.0,",
]


def csv_frame(rows: list[str], header: str = CSV_HEADER) -> pd.DataFrame:
    return read_price_file((header + "\n".join(rows) + "\n").encode(), "prices.csv")


def test_a_good_file_becomes_a_source_frame():
    clean = validate_price_frame(csv_frame(GOOD_ROWS))

    assert list(clean.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert clean.index.name == "date"
    assert list(clean.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06"]
    assert clean["close"].tolist() == [10.5, 11.0, 11.1]
    assert str(clean["volume"].dtype) == "Int64"
    assert clean["volume"].iloc[0] == 1000
    assert clean["volume"].isna().tolist() == [False, False, True]


def test_missing_adj_close_equals_close_and_yahoo_headers_are_understood():
    rows = ["2020-01-02,10.0,11.0,9.5,10.5", "2020-01-03,10.5,11.5,10.0,11.0"]
    clean = validate_price_frame(csv_frame(rows, header="Date,Open,High,Low,Close\n"))
    assert clean["adj_close"].tolist() == clean["close"].tolist()
    assert clean["volume"].isna().all()

    yahoo = "Date,Open,High,Low,Close,Adj Close,Volume\n"
    clean = validate_price_frame(csv_frame(GOOD_ROWS, header=yahoo))
    assert clean["adj_close"].tolist() == [10.4, 10.9, 11.0]


def replace_row(position: int, text: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[position] = text
    return rows


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            replace_row(1, "2020-01-03,9.5,10.0,9.0,11.0,10.9,1200"),
            "row 2 (2020-01-03): high 10.0 is below close 11.0",
        ),
        (
            replace_row(1, "2020-01-03,12.5,12.0,9.0,11.0,10.9,1200"),
            "row 2 (2020-01-03): high 12.0 is below open 12.5",
        ),
        (
            replace_row(2, "2020-01-06,11.2,11.3,11.15,11.1,11.0,"),
            "row 3 (2020-01-06): low 11.15 is above close 11.1",
        ),
        (
            replace_row(1, "2020-02-30,10.5,11.5,10.0,11.0,10.9,1200"),
            "row 2 (2020-02-30): date '2020-02-30' is not a valid date (use YYYY-MM-DD)",
        ),
        (
            replace_row(1, "2020-01-02,10.5,11.5,10.0,11.0,10.9,1200"),
            "row 2 (2020-01-02): date repeats row 1 (2020-01-02)",
        ),
        (
            replace_row(2, "2019-12-31,11.0,11.2,10.8,11.1,11.0,"),
            "row 3 (2019-12-31): date is before the previous row's date 2020-01-03 "
            "(dates must ascend)",
        ),
        (
            replace_row(1, "2020-01-03 15:30,10.5,11.5,10.0,11.0,10.9,1200"),
            "row 2 (2020-01-03): date '2020-01-03 15:30' has a time of day; daily bars only",
        ),
        (
            replace_row(0, "2020-01-02,10.0,11.0,-9.5,10.5,10.4,1000"),
            "row 1 (2020-01-02): low -9.5 is not positive",
        ),
        (
            replace_row(0, "2020-01-02,10.0,11.0,9.5,0,10.4,1000"),
            "row 1 (2020-01-02): close 0.0 is not positive",
        ),
        (
            replace_row(0, "2020-01-02,10.0,inf,9.5,10.5,10.4,1000"),
            "row 1 (2020-01-02): high inf is not finite",
        ),
        (
            replace_row(2, "2020-01-06,11.0,11.2,10.8,abc,11.0,"),
            "row 3 (2020-01-06): close 'abc' is not a number",
        ),
        (
            replace_row(2, "2020-01-06,,11.2,10.8,11.1,11.0,"),
            "row 3 (2020-01-06): open is missing",
        ),
        (
            replace_row(2, "2020-01-06,11.0,11.2,10.8,11.1,,"),
            "row 3 (2020-01-06): adj_close is missing",
        ),
        (
            replace_row(1, "2020-01-03,10.5,11.5,10.0,11.0,10.9,-5"),
            "row 2 (2020-01-03): volume -5 is negative",
        ),
        (
            replace_row(1, "2020-01-03,10.5,11.5,10.0,11.0,10.9,12.5"),
            "row 2 (2020-01-03): volume 12.5 is not a whole number",
        ),
        (
            replace_row(1, "2020-01-03,10.5,11.5,10.0,11.0,10.9,many"),
            "row 2 (2020-01-03): volume 'many' is not a number",
        ),
    ],
)
def test_each_kind_of_bad_row_is_named(rows, message):
    with pytest.raises(PriceValidationError) as raised:
        validate_price_frame(csv_frame(rows))
    assert str(raised.value) == message
    assert raised.value.row == int(message.split()[1])


def test_the_first_bad_row_is_reported_when_several_are_bad():
    rows = [*GOOD_ROWS, "2020-01-07,11.0,10.0,10.8,11.1,11.0,"]
    rows[1] = "2020-01-03,10.5,11.5,10.0,-11.0,10.9,1200"
    with pytest.raises(PriceValidationError, match=r"^row 2 \(2020-01-03\): close -11.0"):
        validate_price_frame(csv_frame(rows))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "date,open,high,low,adj_close\n",
            "missing required column: close (expected date, open, high, low, close, adj_close, "
            "volume)",
        ),
        (
            "date,open,high,low,close,dividends\n",
            "unknown column: dividends (expected date, open, high, low, close, adj_close, volume)",
        ),
        ("date,open,high,low,close,Close\n", "column close appears more than once"),
    ],
)
def test_columns_are_checked(header, message):
    with pytest.raises(PriceValidationError) as raised:
        validate_price_frame(csv_frame(["2020-01-02,1,1,1,1,1"], header=header))
    assert str(raised.value) == message


def test_an_empty_file_is_refused():
    with pytest.raises(PriceValidationError, match="the file has no data rows"):
        validate_price_frame(csv_frame([]))


def test_parquet_files_are_read_including_the_bundled_ones(tmp_path: Path):
    bundled = read_price_file(BUNDLED_DATA_DIRECTORY / "BND.parquet")
    clean = validate_price_frame(bundled)
    assert len(clean) == 4448
    assert clean.index[0] == pd.Timestamp("2007-04-10")

    frame = validate_price_frame(csv_frame(GOOD_ROWS)).reset_index()
    path = tmp_path / "mine.parquet"
    frame.to_parquet(path)
    from_path = validate_price_frame(read_price_file(path))
    from_bytes = validate_price_frame(read_price_file(path.read_bytes(), "mine.PARQUET"))
    pd.testing.assert_frame_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path["close"].to_numpy(), [10.5, 11.0, 11.1])


@pytest.mark.parametrize(
    ("payload", "filename", "message"),
    [
        (b"a,b", "prices.xlsx", "prices.xlsx: unsupported file type '.xlsx'; upload a .csv or"),
        (b"a,b", "prices", "prices: unsupported file type '(none)'; upload a .csv or .parquet"),
        (b"not parquet", "prices.parquet", "prices.parquet: not a readable Parquet file"),
        (b"a,b", None, "a file name is needed to tell CSV from Parquet"),
    ],
)
def test_unreadable_files_are_refused_clearly(payload, filename, message):
    with pytest.raises(PriceValidationError) as raised:
        read_price_file(payload, filename)
    assert str(raised.value).startswith(message)


def test_a_missing_path_is_refused(tmp_path: Path):
    with pytest.raises(PriceValidationError, match=r"nothing\.csv: file not found"):
        read_price_file(tmp_path / "nothing.csv")


def test_validation_accepts_a_frame_from_memory():
    frame = pd.DataFrame(
        {
            "date": ["2020-01-02", "2020-01-03"],
            "open": [1.0, 2.0],
            "high": [1.5, 2.5],
            "low": [0.5, 1.5],
            "close": [1.2, 2.2],
        }
    )
    clean = validate_price_frame(frame)
    assert clean["close"].tolist() == [1.2, 2.2]
    assert clean is not frame
    buffer = io.StringIO()
    clean.to_csv(buffer)
    assert buffer.getvalue().splitlines()[0] == "date,open,high,low,close,adj_close,volume"
