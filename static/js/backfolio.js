/* Backfolio pages: charts drawn from the pages' own JSON endpoints with the vendored Plotly,
 * and live status polling. No framework, no build step. Each block starts only when its page
 * holds the element it needs. */
(function () {
  "use strict";

  var PLOT_CONFIG = { responsive: true, displaylogo: false };
  var BASE_LAYOUT = {
    margin: { l: 60, r: 20, t: 10, b: 40 },
    hovermode: "x unified",
    legend: { orientation: "h", y: -0.15 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)"
  };

  function layout(extra) {
    return Object.assign({}, BASE_LAYOUT, extra || {});
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(
            function (body) { throw new Error(body.detail || response.statusText); },
            function () { throw new Error(response.statusText); }
          );
        }
        return response.json();
      });
  }

  function showError(container, error) {
    var slot = container.querySelector(".chart-error");
    if (slot) {
      slot.textContent = "The charts cannot be drawn: " + error.message;
      slot.hidden = false;
    }
  }

  function percent(value, digits) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(digits) + "%";
  }

  function drawWorstDrawdowns(periods) {
    var body = document.querySelector("#worst-drawdowns tbody");
    if (!body) { return; }
    body.innerHTML = periods.length ? periods.map(function (period, index) {
      return "<tr><td>" + (index + 1) + "</td><td>" + escapeText(period.start_date) + "</td><td>" +
        escapeText(period.end_date) + "</td><td>" + escapeText(period.recovery_date || "not yet") +
        "</td><td class=\"num\">" + percent(period.max_drawdown, 2) + "</td><td class=\"num\">" +
        escapeText(period.duration_days) + "</td><td class=\"num\">" +
        escapeText(period.recovery_days === null ? "—" : period.recovery_days) + "</td></tr>";
    }).join("") : "<tr><td colspan=\"7\" class=\"muted\">Never below the initial capital.</td></tr>";
  }

  function drawRolling(data) {
    var element = document.getElementById("rolling-chart");
    if (!element || !data.rolling) { return; }
    var rolling = data.rolling;
    var traces = [
      { x: rolling.sharpe.dates, y: rolling.sharpe.values, type: "scatter", mode: "lines",
        name: "Sharpe", line: { width: 1.5 } },
      { x: rolling.volatility.dates, y: rolling.volatility.values, type: "scatter",
        mode: "lines", name: "Volatility", yaxis: "y2", line: { width: 1.5 } }
    ];
    if (rolling.beta) {
      traces.push({ x: rolling.beta.dates, y: rolling.beta.values, type: "scatter",
        mode: "lines", name: "Beta to " + data.benchmark_symbol, line: { width: 1.5, dash: "dot" } });
    }
    var label = document.getElementById("rolling-window");
    if (label) { label.textContent = "(trailing " + rolling.window + " bars)"; }
    Plotly.react(element, traces, layout({
      yaxis: { title: { text: "Sharpe, beta" } },
      yaxis2: { title: { text: "Volatility" }, overlaying: "y", side: "right", tickformat: ".0%" },
      margin: { l: 60, r: 60, t: 10, b: 40 }
    }), PLOT_CONFIG);
  }

  function drawMonthly(data) {
    var monthly = data.monthly_returns;
    var columns = monthly.months.concat(["Year"]);
    var values = monthly.values.map(function (row, index) {
      return row.concat([monthly.yearly[index]]);
    });
    var text = values.map(function (row, index) {
      return row.map(function (value, column) {
        if (value === null) { return ""; }
        var shown = (value * 100).toFixed(1) + "%";
        if (column === 12 && monthly.benchmark_yearly && monthly.benchmark_yearly[index] !== null &&
            monthly.benchmark_yearly[index] !== undefined) {
          shown += "<br>" + data.benchmark_symbol + " " + percent(monthly.benchmark_yearly[index], 1);
        }
        return shown;
      });
    });
    var heatmapHeight = Math.max(220, 80 + 36 * monthly.years.length);
    document.getElementById("monthly-chart").style.height = heatmapHeight + "px";
    Plotly.react("monthly-chart", [{
      z: values, x: columns, y: monthly.years.map(String), type: "heatmap",
      text: text, texttemplate: "%{text}", hoverongaps: false, zmid: 0,
      colorscale: [[0, "#c0392b"], [0.5, "#f7f7f7"], [1, "#1e8449"]],
      colorbar: { tickformat: ".0%" }
    }], layout({
      yaxis: { autorange: "reversed", type: "category" }, hovermode: "closest",
      xaxis: { type: "category" },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: 11.5, x1: 11.5, y0: 0, y1: 1,
        line: { color: "#1d2733", width: 2 } }]
    }), PLOT_CONFIG);
  }

  function drawBacktest(container) {
    var choice = document.getElementById("benchmark-choice");
    var logScale = document.getElementById("log-scale");
    function url() {
      var base = container.dataset.chartUrl;
      return choice && choice.value ? base + "?benchmark=" + encodeURIComponent(choice.value) : base;
    }
    function equityAxis() {
      return { title: { text: "Equity" }, type: logScale && logScale.checked ? "log" : "linear" };
    }
    function draw() {
      getJSON(url()).then(function (data) {
        var traces = [{
          x: data.equity.dates, y: data.equity.values, type: "scatter", mode: "lines",
          name: "Strategy", line: { width: 2 }
        }];
        if (data.benchmark) {
          traces.push({
            x: data.benchmark.dates, y: data.benchmark.values, type: "scatter", mode: "lines",
            name: data.benchmark.symbol + " buy and hold", line: { width: 1, dash: "dot" }
          });
        }
        Plotly.react("equity-chart", traces, layout({ yaxis: equityAxis() }), PLOT_CONFIG);

        Plotly.react("drawdown-chart", [{
          x: data.drawdown.dates, y: data.drawdown.values, type: "scatter", mode: "lines",
          fill: "tozeroy", name: "Drawdown", line: { color: "#c0392b", width: 1 }
        }], layout({ yaxis: { tickformat: ".0%", title: { text: "Below peak" } }, showlegend: false }),
        PLOT_CONFIG);

        drawRolling(data);
        drawMonthly(data);
        if (data.worst_drawdowns) { drawWorstDrawdowns(data.worst_drawdowns); }
        container.dataset.drawn = data.benchmark_symbol || "";
        // The allocation panels (when the run has them) draw from the same data.
        container.dispatchEvent(new CustomEvent("chart-data", { detail: data }));
      }).catch(function (error) { showError(container, error); });
    }
    if (choice) { choice.addEventListener("change", draw); }
    if (logScale) {
      logScale.addEventListener("change", function () {
        Plotly.relayout("equity-chart", { "yaxis.type": logScale.checked ? "log" : "linear" });
      });
    }
    draw();
  }

  function drawComparison(container) {
    getJSON(container.dataset.chartUrl).then(function (data) {
      var period = document.getElementById("compare-period");
      if (period && data.common_start) {
        period.textContent = "(common period " + data.common_start + " → " + data.common_end + ")";
      }
      var traces = data.series.map(function (series) {
        return { x: series.dates, y: series.values, type: "scatter", mode: "lines",
          name: series.label, line: { width: 1.5 } };
      });
      var compact = layout({ yaxis: { title: { text: "Rebased to 100" } },
        legend: { orientation: "h", y: -0.2, font: { size: 11 } } });
      Plotly.newPlot("compare-chart", traces, compact, PLOT_CONFIG);
      var drawdowns = data.series.map(function (series) {
        return { x: series.drawdown.dates, y: series.drawdown.values, type: "scatter",
          mode: "lines", name: series.label, line: { width: 1 } };
      });
      var element = document.getElementById("compare-drawdown-chart");
      if (element) {
        Plotly.newPlot(element, drawdowns, layout({
          yaxis: { tickformat: ".0%", title: { text: "Below peak" } }, showlegend: false
        }), PLOT_CONFIG);
      }
    }).catch(function (error) { showError(container, error); });
  }

  function followBacktest(container) {
    var url = container.dataset.statusUrl;
    function poll() {
      getJSON(url).then(function (status) {
        var bar = document.getElementById("live-progress");
        var message = document.getElementById("live-message");
        var label = document.getElementById("backtest-status");
        if (bar) { bar.value = status.progress; }
        if (message && status.message) { message.textContent = status.message; }
        if (label) { label.textContent = status.status; }
        if (status.done) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      }).catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  }

  function escapeText(value) {
    var span = document.createElement("span");
    span.textContent = value === null || value === undefined ? "" : String(value);
    return span.innerHTML;
  }

  function renderLeaderboard(status) {
    var body = document.querySelector("#leaderboard tbody");
    if (!body) { return; }
    body.innerHTML = status.leaderboard.map(function (entry) {
      return "<tr><td>" + escapeText(entry.rank || "—") + "</td>" +
        "<td><a href=\"/backtests/" + escapeText(entry.backtest_id) + "/\">" +
        escapeText(String(entry.backtest_id).slice(0, 8)) + "</a></td>" +
        "<td>" + escapeText(entry.parameters) + "</td>" +
        "<td><span class=\"status status-" + escapeText(entry.status) + "\">" +
        escapeText(entry.status_label) + "</span></td>" +
        "<td class=\"num\">" + escapeText(entry.score_display) + "</td></tr>";
    }).join("");
  }

  function drawSweepHeatmap(heatmap, metric) {
    var element = document.getElementById("sweep-heatmap");
    if (!element || !heatmap) { return; }
    element.hidden = false;
    Plotly.react(element, [{
      z: heatmap.z, x: heatmap.x.map(String), y: heatmap.y.map(String), type: "heatmap",
      hoverongaps: false, colorscale: "Viridis", colorbar: { title: { text: metric } }
    }], layout({
      xaxis: { title: { text: heatmap.x_name }, type: "category" },
      yaxis: { title: { text: heatmap.y_name }, type: "category" },
      hovermode: "closest", margin: { l: 80, r: 20, t: 10, b: 50 }
    }), PLOT_CONFIG);
  }

  function followSweep(container) {
    var url = container.dataset.statusUrl;
    function update(status) {
      var badge = document.getElementById("sweep-status");
      badge.textContent = status.status_label;
      badge.className = "status status-" + String(status.status).toLowerCase();
      if (status.finished) {
        // "The sweep … is queued" was true when the page opened; it no longer is.
        document.querySelectorAll(".messages .message.success").forEach(function (message) {
          message.remove();
        });
      }
      document.getElementById("sweep-done").textContent = status.done;
      document.getElementById("sweep-total").textContent = status.total;
      var bar = document.getElementById("sweep-progress");
      bar.max = status.total;
      bar.value = status.done;
      renderLeaderboard(status);
      drawSweepHeatmap(status.heatmap, status.rank_metric);
      container.dataset.finished = status.finished ? "true" : "false";
    }
    function poll() {
      getJSON(url).then(function (status) {
        update(status);
        if (!status.finished) { window.setTimeout(poll, 1000); }
      }).catch(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var charts = document.getElementById("backtest-charts");
    if (charts) { drawBacktest(charts); }
    var comparison = document.getElementById("compare-charts");
    if (comparison) { drawComparison(comparison); }
    var live = document.getElementById("live-status");
    if (live) { followBacktest(live); }
    var sweep = document.getElementById("sweep");
    if (sweep) { followSweep(sweep); }
  });
})();

/* Run forms: only the chosen built-in signal's parameters are shown, and a grid says how many
 * combinations it means before anything starts. */
(function () {
  "use strict";

  function countValues(text) {
    text = text.trim();
    if (text.indexOf(":") >= 0) {
      var parts = text.split(":").map(Number);
      if (parts.length !== 3 || parts.some(isNaN) || parts[2] <= 0 || parts[1] < parts[0]) {
        return null;
      }
      return Math.floor((parts[1] - parts[0]) / parts[2] + 1e-9) + 1;
    }
    var values = text.split(",").filter(function (part) { return part.trim() !== ""; });
    if (!values.length || values.some(function (part) { return isNaN(Number(part)); })) {
      return null;
    }
    return values.length;
  }

  function combinations(text) {
    var total = 1;
    var lines = text.split("\n").filter(function (line) { return line.trim() !== ""; });
    if (!lines.length) { return null; }
    for (var i = 0; i < lines.length; i += 1) {
      var at = lines[i].indexOf("=");
      if (at < 1) { return null; }
      var count = countValues(lines[i].slice(at + 1));
      if (count === null) { return null; }
      total *= count;
    }
    return total;
  }

  function followGrid(textarea) {
    var output = textarea.parentNode.querySelector("output.combinations");
    function update() {
      var total = combinations(textarea.value);
      output.textContent = total === null ? "" :
        total.toLocaleString("en") + (total === 1 ? " combination" : " combinations");
    }
    textarea.addEventListener("input", update);
    update();
  }

  function followPluginChoice(form) {
    var select = form.querySelector("select[name$='signal_plugin_key']");
    if (!select) { return; }
    function update() {
      form.querySelectorAll("[data-plugin]").forEach(function (field) {
        field.hidden = field.dataset.plugin !== select.value;
      });
    }
    select.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.run-form").forEach(followPluginChoice);
    document.querySelectorAll("textarea[data-combinations]").forEach(followGrid);
  });
})();

/* A research sweep's or walk-forward's page follows its progress and reloads when it ends. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("research-run");
    if (!container || container.dataset.finished === "true") { return; }
    function poll() {
      fetch(container.dataset.statusUrl, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (status) {
          document.getElementById("research-done").textContent = status.done;
          document.getElementById("research-total").textContent = status.total;
          var bar = document.getElementById("research-progress");
          bar.max = Math.max(status.total, 1);
          bar.value = status.done;
          document.getElementById("research-status").textContent = status.status;
          if (status.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 1000);
  });
})();

/* The robustness panel: computed when asked (the button), followed until done, then shown. */
(function () {
  "use strict";

  var NAMES = { cagr: "CAGR", sharpe: "Sharpe ratio", sortino: "Sortino ratio",
    volatility: "Volatility (annualised)", max_drawdown: "Max drawdown" };
  var PERCENT = { cagr: true, volatility: true, max_drawdown: true };

  function csrfToken(panel) {
    var field = panel.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function shown(name, value) {
    if (value === null || value === undefined) { return "—"; }
    return PERCENT[name] ? (value * 100).toFixed(2) + "%" : value.toFixed(3);
  }

  function psrSentence(psr, positive) {
    if (psr === null || psr === undefined) {
      return "The probabilistic Sharpe ratio is undefined for this run (its returns do not vary).";
    }
    var verdict = psr >= 0.95 ? "a true Sharpe above zero is likely" :
      psr >= 0.5 ? "a true Sharpe above zero is more likely than not, but far from sure" :
        "the Sharpe ratio is more likely luck than skill";
    var text = "Probabilistic Sharpe ratio " + (psr * 100).toFixed(1) + "%: " + verdict + ".";
    if (positive !== null && positive !== undefined) {
      text += " " + (positive * 100).toFixed(1) + "% of resampled histories have a positive Sharpe.";
    }
    return text;
  }

  function render(panel, result) {
    var bootstrap = result.bootstrap;
    document.getElementById("robustness-psr").textContent =
      psrSentence(result.psr, bootstrap.probability_positive);
    var body = document.querySelector("#robustness-intervals tbody");
    body.innerHTML = Object.keys(bootstrap.metrics).map(function (name) {
      var row = bootstrap.metrics[name];
      return "<tr><th scope=\"row\">" + (NAMES[name] || name) + "</th><td class=\"num\">" +
        shown(name, row.point) + "</td><td class=\"num\">" + shown(name, row.lower) +
        "</td><td class=\"num\">" + shown(name, row.upper) + "</td></tr>";
    }).join("");
    body.parentNode.querySelector("thead th:nth-child(3)").textContent =
      "Lower " + Math.round(bootstrap.confidence * 100) + "%";
    var costs = result.cost_sensitivity;
    var breakeven = costs.breakeven_cost_bps;
    document.getElementById("robustness-breakeven").textContent = breakeven === null ?
      "No break-even cost: the CAGR is not positive even without costs, or stays positive up to 500 bps." :
      "Break-even: at " + breakeven.toFixed(2) + " bps commission plus " + breakeven.toFixed(2) +
      " bps slippage per trade side the CAGR falls to zero.";
    var x = costs.rows.map(function (row) { return (row.commission + row.slippage) * 10000; });
    var traces = [{
      x: x, y: costs.rows.map(function (row) { return row.cagr; }), type: "scatter",
      mode: "lines+markers", name: "CAGR",
      text: costs.rows.map(function (row) {
        return row.multiplier === null ? "" : row.multiplier + "× the run's costs";
      })
    }];
    var shapes = [];
    if (breakeven !== null) {
      shapes.push({ type: "line", x0: 2 * breakeven, x1: 2 * breakeven, yref: "paper", y0: 0, y1: 1,
        line: { color: "#c0392b", dash: "dash" } });
    }
    Plotly.react("cost-chart", traces, {
      margin: { l: 60, r: 20, t: 10, b: 50 }, showlegend: false, shapes: shapes,
      xaxis: { title: { text: "Commission + slippage per trade side (bps)" } },
      yaxis: { title: { text: "CAGR" }, tickformat: ".1%" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
    }, { responsive: true, displaylogo: false });
    document.getElementById("robustness-result").hidden = false;
    panel.dataset.state = "shown";
  }

  function follow(panel, response) {
    var progress = document.getElementById("robustness-progress");
    var error = document.getElementById("robustness-error");
    return response.json().then(function (body) {
      if (!response.ok) { throw new Error(body.detail || response.statusText); }
      progress.hidden = false;
      progress.max = Math.max(body.total, 1);
      progress.value = body.done;
      if (body.status === "completed") {
        progress.hidden = true;
        render(panel, body.result);
      } else if (body.status === "failed") {
        throw new Error(body.error || "The computation failed.");
      } else {
        window.setTimeout(function () {
          fetch(panel.dataset.statusUrl, { credentials: "same-origin" })
            .then(function (next) { return follow(panel, next); })
            .catch(function (problem) { error.textContent = problem.message; error.hidden = false; });
        }, 1000);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("robustness");
    if (!panel) { return; }
    var button = document.getElementById("robustness-button");
    var error = document.getElementById("robustness-error");
    button.addEventListener("click", function () {
      button.disabled = true;
      error.hidden = true;
      panel.dataset.state = "computing";
      fetch(panel.dataset.startUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(panel), Accept: "application/json" }
      }).then(function (response) { return follow(panel, response); })
        .catch(function (problem) {
          error.textContent = problem.message;
          error.hidden = false;
          button.disabled = false;
        });
    });
  });
})();

/* A research sweep's charts: the rank metric over two chosen parameters, the λ histogram and
 * the in-sample vs out-of-sample scatter. */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false };
  function frame(extra) {
    return Object.assign({ margin: { l: 70, r: 20, t: 10, b: 50 }, hovermode: "closest",
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", showlegend: false },
    extra || {});
  }

  function draw(container) {
    var xChoice = document.getElementById("heatmap-x");
    var yChoice = document.getElementById("heatmap-y");
    var url = container.dataset.chartUrl;
    if (xChoice && yChoice && xChoice.value && yChoice.value) {
      url += "?x=" + encodeURIComponent(xChoice.value) + "&y=" + encodeURIComponent(yChoice.value);
    }
    fetch(url, { credentials: "same-origin" }).then(function (response) {
      return response.json();
    }).then(function (data) {
      var heatmap = data.heatmap;
      var element = document.getElementById("research-heatmap");
      if (heatmap) {
        element.hidden = false;
        Plotly.react(element, [{
          z: heatmap.z, x: heatmap.x.map(String), y: heatmap.y.map(String), type: "heatmap",
          hoverongaps: false, colorscale: "Viridis", colorbar: { title: { text: data.rank_metric } }
        }], frame({ xaxis: { title: { text: heatmap.x_name }, type: "category" },
          yaxis: { title: { text: heatmap.y_name }, type: "category" } }), CONFIG);
      } else {
        element.hidden = true;
      }
      var histogram = data.logit_histogram;
      if (histogram && document.getElementById("lambda-chart")) {
        var centres = histogram.counts.map(function (count, index) {
          return (histogram.edges[index] + histogram.edges[index + 1]) / 2;
        });
        Plotly.react("lambda-chart", [{
          x: centres, y: histogram.counts, type: "bar",
          marker: { color: centres.map(function (x) { return x <= 0 ? "#c0392b" : "#1f5fa8"; }) }
        }], frame({ xaxis: { title: { text: "λ" } }, yaxis: { title: { text: "Splits" } },
          bargap: 0.05 }), CONFIG);
      }
      var scatter = data.scatter;
      if (scatter && document.getElementById("is-oos-chart")) {
        // The PBO's own points: each split's best in-sample configuration, in and out of sample.
        var colours = scatter.below_median.map(function (below) { return below ? "#c0392b" : "#1f5fa8"; });
        var traces = [{ x: scatter.in_sample, y: scatter.out_of_sample, type: "scatter",
          mode: "markers", marker: { size: 5, opacity: 0.6, color: colours },
          name: "Splits (red: below the median out of sample)" }];
        var known = scatter.in_sample.filter(function (value) { return value !== null; });
        var line = scatter.degradation;
        if (known.length && line && line.slope !== null) {
          var low = Math.min.apply(null, known);
          var high = Math.max.apply(null, known);
          traces.push({ x: [low, high], y: [line.intercept + line.slope * low, line.intercept + line.slope * high],
            type: "scatter", mode: "lines", name: "Degradation (least squares)",
            line: { dash: "dot", color: "#66727f" } });
        }
        Plotly.react("is-oos-chart", traces, frame({
          xaxis: { title: { text: "Sharpe in sample (best configuration)" } },
          yaxis: { title: { text: "Same configuration, out of sample" } } }), CONFIG);
      }
      container.dataset.drawn = "true";
    }).catch(function (error) {
      var slot = container.querySelector(".chart-error");
      if (slot) { slot.textContent = "The charts cannot be drawn: " + error.message; slot.hidden = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("research-charts");
    if (!container) { return; }
    ["heatmap-x", "heatmap-y"].forEach(function (id) {
      var select = document.getElementById(id);
      if (select) { select.addEventListener("change", function () { draw(container); }); }
    });
    draw(container);
  });
})();

/* A walk-forward's charts: stitched out-of-sample equity with fold boundaries and the
 * in-sample equity of each fold's choice, and the chosen parameters fold by fold. */
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("walk-forward-charts");
    if (!container) { return; }
    var config = { responsive: true, displaylogo: false };
    var base = { margin: { l: 70, r: 20, t: 10, b: 40 }, hovermode: "x unified",
      legend: { orientation: "h", y: -0.15 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" };
    fetch(container.dataset.chartUrl, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.equity) { return; }
        var traces = [{ x: data.equity.dates, y: data.equity.values, type: "scatter",
          mode: "lines", name: "Out of sample (stitched)", line: { width: 2 } }];
        if (data.in_sample && data.in_sample.dates.length) {
          traces.push({ x: data.in_sample.dates, y: data.in_sample.values, type: "scatter",
            mode: "lines", name: "In sample (each fold's choice)", connectgaps: false,
            line: { width: 1.5, dash: "dash" } });
        }
        var shapes = data.boundaries.map(function (day) {
          return { type: "line", x0: day, x1: day, yref: "paper", y0: 0, y1: 1,
            line: { color: "#66727f", width: 1, dash: "dot" } };
        });
        Plotly.newPlot("walk-forward-equity", traces,
          Object.assign({}, base, { shapes: shapes, yaxis: { title: { text: "Equity" } } }), config);
        var chosen = Object.keys(data.chosen).map(function (name) {
          return { x: data.chosen[name].dates, y: data.chosen[name].values, type: "scatter",
            mode: "lines+markers", line: { shape: "hv" }, name: name };
        });
        Plotly.newPlot("walk-forward-chosen", chosen,
          Object.assign({}, base, { yaxis: { title: { text: "Value" } } }), config);
        container.dataset.drawn = "true";
      })
      .catch(function (error) {
        var slot = container.querySelector(".chart-error");
        if (slot) { slot.textContent = "The charts cannot be drawn: " + error.message; slot.hidden = false; }
      });
  });
})();

/* An allocation run's analytics (a Backfolio run's saved result, or a v1 allocation run's
 * saved analysis): the held group over time on the equity chart's dates, what each group earned,
 * rolling metrics, correlations, risk contribution, benchmark comparison, transactions and the
 * drawdown periods. Drawn from the tear sheet's own chart data (no second request). */
(function () {
  "use strict";

  var CONFIG = { responsive: true, displaylogo: false };
  var FRAME = { margin: { l: 60, r: 20, t: 10, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", legend: { orientation: "h", y: -0.2 } };
  // How each saved number reads: fractions as percent, money, counts, plain ratios.
  var UNITS = {
    alpha_annualized: "percent", tracking_error: "percent", benchmark_cagr: "percent",
    excess_return_cagr: "percent", up_capture: "percent", down_capture: "percent",
    total_transaction_costs: "money", total_turnover: "money", avg_cost_per_trade: "money",
    total_trades: "count", cost_as_pct_of_portfolio: "percent-number"
  };
  var LABELS = {
    benchmark: "Benchmark", correlation: "Correlation", beta: "Beta",
    alpha_annualized: "Alpha (annualised)", information_ratio: "Information ratio",
    tracking_error: "Tracking error", up_capture: "Up capture", down_capture: "Down capture",
    benchmark_cagr: "Benchmark CAGR", excess_return_cagr: "CAGR above the benchmark",
    total_transaction_costs: "Costs paid", total_trades: "Orders", total_turnover: "Traded value",
    avg_cost_per_trade: "Average cost per order", cost_as_pct_of_portfolio: "Costs, % of the capital",
    turnover_ratio: "Turnover (× mean equity)", trading_frequency: "Orders per bar"
  };

  function frame(extra) { return Object.assign({}, FRAME, extra || {}); }

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value === null || value === undefined ? "—" : String(value);
    return span.innerHTML;
  }

  function shown(key, value) {
    if (value === null || value === undefined) { return "—"; }
    if (typeof value !== "number") { return String(value); }
    switch (UNITS[key]) {
      case "percent": return (value * 100).toFixed(2) + "%";
      case "percent-number": return value.toFixed(2) + "%";
      case "money": return value.toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
      case "count": return value.toLocaleString("en");
      default: return value.toFixed(3);
    }
  }

  function facts(id, block) {
    var list = document.getElementById(id);
    if (!list) { return; }
    var keys = Object.keys(block);
    list.innerHTML = keys.length ? keys.map(function (key) {
      return "<dt>" + text(LABELS[key] || key.replace(/_/g, " ")) + "</dt><dd class=\"num\">" +
        text(shown(key, block[key])) + "</dd>";
    }).join("") : "<dt>—</dt><dd class=\"muted\">No prices for the benchmark over the run.</dd>";
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(2) + "%";
  }

  function rows(id, items, cells, empty) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body) { return; }
    body.innerHTML = items.length ? items.map(function (item) {
      return "<tr>" + cells(item).map(function (cell, index) {
        return "<td" + (index >= cells.numericFrom ? " class=\"num\"" : "") + ">" + text(cell) + "</td>";
      }).join("") + "</tr>";
    }).join("") : "<tr><td colspan=\"6\" class=\"muted\">" + text(empty) + "</td></tr>";
  }

  function draw(data) {
    var portfolio = data.portfolio;
    if (!portfolio || !document.getElementById("allocation-chart")) { return; }
    var x = [], y = [];
    portfolio.allocation.forEach(function (segment) {
      x.push(segment.start, segment.end, null);
      y.push(segment.group, segment.group, null);
    });
    // Same x range as the equity chart above, so a switch lines up with its date there.
    var range = [data.equity.dates[0], data.equity.dates[data.equity.dates.length - 1]];
    Plotly.react("allocation-chart", [{ x: x, y: y, type: "scatter", mode: "lines",
      line: { width: 10 }, connectgaps: false, name: "Held group" }],
    frame({ showlegend: false, xaxis: { range: range, type: "date" },
      yaxis: { type: "category" } }), CONFIG);
    var summaryCells = function (entry) {
      return [entry.allocation, entry.days.toLocaleString("en"), percent(entry.total_return),
        entry.avg_daily_return === null ? "—" : (entry.avg_daily_return * 100).toFixed(3) + "%"];
    };
    summaryCells.numericFrom = 1;
    rows("allocation-summary", portfolio.allocation_summary, summaryCells, "No group was held.");
    var rolling = portfolio.rolling;
    Plotly.react("portfolio-rolling-chart", [
      { x: rolling.dates, y: rolling.rolling_sharpe, type: "scatter", mode: "lines", name: "Sharpe" },
      { x: rolling.dates, y: rolling.rolling_sortino, type: "scatter", mode: "lines", name: "Sortino" },
      { x: rolling.dates, y: rolling.rolling_volatility, type: "scatter", mode: "lines",
        name: "Volatility", yaxis: "y2" }
    ], frame({ xaxis: { range: range, type: "date" },
      yaxis2: { overlaying: "y", side: "right", tickformat: ".0%" } }), CONFIG);
    var names = Object.keys(portfolio.correlation);
    Plotly.react("correlation-chart", [{ type: "heatmap", x: names, y: names,
      z: names.map(function (row) { return names.map(function (column) { return portfolio.correlation[row][column]; }); }),
      zmin: -1, zmax: 1, colorscale: "RdBu", reversescale: true, texttemplate: "%{z:.2f}" }],
    frame({ yaxis: { autorange: "reversed" } }), CONFIG);
    var assets = Object.keys(portfolio.risk_contribution);
    Plotly.react("risk-contribution-chart", [{ type: "bar", x: assets,
      y: assets.map(function (name) { return portfolio.risk_contribution[name]; }) }],
    frame({ showlegend: false, yaxis: { tickformat: ".0%", title: { text: "Share of risk" } } }), CONFIG);
    facts("benchmark-comparison", portfolio.benchmark_comparison);
    facts("transaction-analysis", portfolio.transaction_analysis);
    var periodCells = function (period) {
      return [period.start_date, period.end_date, period.recovery_date || "not yet",
        percent(period.max_drawdown), period.duration_days,
        period.recovery_days === null ? "—" : period.recovery_days];
    };
    periodCells.numericFrom = 3;
    rows("drawdown-periods", portfolio.drawdown_periods, periodCells,
      "Never more than 5% below a peak.");
    document.getElementById("portfolio-analytics").dataset.drawn = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("backtest-charts");
    if (!container || !document.getElementById("portfolio-analytics")) { return; }
    container.addEventListener("chart-data", function (event) { draw(event.detail); });
  });
})();
