"""Importing a user's price series: all or nothing, visible to the price store at once."""

import io

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from marketdata.models import PriceSeries
from marketdata.services import price_series_import
from marketdata.store import get_store

pytestmark = pytest.mark.django_db

GOOD_CSV = b"""date,open,high,low,close,adj_close,volume
2021-01-04,10.0,10.5,9.8,10.2,10.1,1000
2021-01-05,10.2,10.9,10.1,10.8,10.7,1200
2021-01-06,10.8,11.0,10.4,10.5,10.4,900
2021-01-07,10.5,10.7,10.3,10.6,10.5,
"""


def _import(content=GOOD_CSV, *, symbol="MYFUND", filename="prices.csv", user=None):
    return price_series_import(symbol=symbol, file=content, filename=filename, user=user)


def test_a_good_csv_is_stored_and_served_by_the_store(staff_user):
    series = _import(user=staff_user)

    assert (series.symbol, series.rows) == ("MYFUND", 4)
    assert (str(series.first_date), str(series.last_date)) == ("2021-01-04", "2021-01-07")
    assert series.uploaded_by == staff_user
    assert len(series.sha256) == 64
    coverage = get_store().coverage("MYFUND")
    assert (coverage.source, coverage.rows) == ("uploaded", 4)
    prices = get_store().load(["MYFUND"], "2021-01-04", "2021-01-07", adjustment="split_only")
    assert prices.close["MYFUND"].tolist() == [10.2, 10.8, 10.5, 10.6]
    total_return = get_store().load(["MYFUND"], "2021-01-04", "2021-01-07")
    assert total_return.close["MYFUND"].iloc[0] == pytest.approx(10.1)


def test_a_parquet_file_imports_the_same_way():
    frame = pd.read_csv(io.BytesIO(GOOD_CSV))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)

    series = _import(buffer.getvalue(), symbol="pqfund", filename="prices.parquet")

    assert (series.symbol, series.rows) == ("PQFUND", 4)


def test_a_bad_row_imports_nothing_and_is_named():
    bad = GOOD_CSV.replace(b"2021-01-06,10.8,11.0,10.4", b"2021-01-06,10.8,10.0,10.4")

    with pytest.raises(ValidationError) as raised:
        _import(bad)

    message = raised.value.message_dict["file"][0]
    assert message.startswith("row 3 (2021-01-06)")
    assert not PriceSeries.objects.exists()


def test_reimporting_replaces_the_series_whole():
    _import()
    shorter = b"date,open,high,low,close\n2022-03-01,5,6,4,5.5\n2022-03-02,5.5,6,5,5.8\n"

    series = _import(shorter)

    assert PriceSeries.objects.count() == 1
    assert (series.rows, str(series.first_date)) == (2, "2022-03-01")
    prices = get_store().load(["MYFUND"], "2022-03-01", "2022-03-02")
    assert prices.close["MYFUND"].tolist() == [5.5, 5.8]


@pytest.mark.parametrize(
    ("symbol", "reason"),
    [("SPY", "bundled"), ("CASH", "computed"), ("SPY?L=2", "computed"), ("bad symbol!", "Invalid")],
)
def test_symbols_that_cannot_be_imported(symbol, reason):
    with pytest.raises(ValidationError) as raised:
        _import(symbol=symbol)
    assert reason in raised.value.message_dict["symbol"][0]
    assert not PriceSeries.objects.exists()


def test_management_command_imports_a_file(tmp_path):
    path = tmp_path / "fund.csv"
    path.write_bytes(GOOD_CSV)
    out = io.StringIO()

    call_command("import_prices", str(path), "--symbol", "cmdfund", stdout=out)

    assert "Imported CMDFUND: 4 rows, 2021-01-04 – 2021-01-07" in out.getvalue()
    assert PriceSeries.objects.get().symbol == "CMDFUND"


def test_management_command_reports_the_bad_row_and_imports_nothing(tmp_path):
    path = tmp_path / "fund.csv"
    path.write_bytes(GOOD_CSV.replace(b"2021-01-05", b"2021-01-03"))

    with pytest.raises(CommandError) as raised:
        call_command("import_prices", str(path), "--symbol", "cmdfund")

    assert "Nothing imported" in str(raised.value)
    assert "row 2" in str(raised.value)
    assert not PriceSeries.objects.exists()


def test_management_command_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_prices", str(tmp_path / "nope.csv"), "--symbol", "X")
