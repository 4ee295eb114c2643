/* The strategy builder: a form over one definition document, and a JSON view of the same
 * document. Every edit rewrites the JSON (what is submitted) and asks the server for the
 * definition's problems, which are shown next to the field their path names. Plain DOM, no
 * framework, no build step. */
(function () {
  "use strict";

  var form = document.getElementById("strategy-form");
  if (!form) { return; }
  var catalogue = JSON.parse(document.getElementById("builder-catalogue").textContent);
  var starters = JSON.parse(document.getElementById("builder-starters").textContent);
  var serverProblems = JSON.parse(document.getElementById("builder-problems").textContent);
  var builder = document.getElementById("builder");
  var jsonView = document.getElementById("json-view");
  var textarea = document.getElementById("id_definition");
  var jsonError = document.getElementById("json-error");
  var problemList = document.getElementById("problems");
  var stateLabel = document.getElementById("validation-state");
  var kindSelect = document.getElementById("id_kind");
  var universeInput = document.getElementById("id_universe");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var signalTypes = {};
  catalogue.signals.forEach(function (signal) { signalTypes[signal.name] = signal; });
  var talibFunctions = {};
  catalogue.talib_functions.forEach(function (described) { talibFunctions[described.name] = described; });

  var definition = null;
  var view = "builder";
  var validateTimer = null;

  // --- small DOM helpers ---------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key === "className") { node.className = attrs[key]; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), attrs[key]); }
      else if (attrs[key] !== null && attrs[key] !== undefined) { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function select(options, value, onchange, attrs) {
    var node = el("select", Object.assign({ onchange: function () { onchange(node.value); } }, attrs || {}));
    options.forEach(function (option) {
      var pair = Array.isArray(option) ? option : [option, option];
      var item = el("option", { value: pair[0], text: pair[1] });
      if (String(pair[0]) === String(value)) { item.selected = true; }
      node.appendChild(item);
    });
    return node;
  }

  function button(label, onclick, className) {
    return el("button", { type: "button", text: label, className: className || "small", onclick: onclick });
  }

  function numberOrText(text) {
    var trimmed = text.trim();
    if (trimmed === "") { return null; }
    var number = Number(trimmed);
    return isNaN(number) ? trimmed : number;
  }

  // --- sync: builder → JSON → validation ------------------------------------------------------
  function changed(rerender) {
    textarea.value = JSON.stringify(definition, null, 2);
    if (rerender) { render(); }
    scheduleValidation();
  }

  function scheduleValidation() {
    window.clearTimeout(validateTimer);
    validateTimer = window.setTimeout(validate, 300);
  }

  function universe() {
    return universeInput.value.split(",").map(function (s) { return s.trim(); })
      .filter(function (s) { return s !== ""; });
  }

  function validate() {
    stateLabel.textContent = "Checking…";
    fetch(form.dataset.validateUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ kind: kindSelect.value, definition: definition, universe: universe() })
    }).then(function (response) { return response.json(); }).then(function (result) {
      showProblems(result.problems || []);
      stateLabel.textContent = result.valid ? "Valid." :
        (result.problems.length ? result.problems.length + " problem(s)." : "See the fields above.");
    }).catch(function () { stateLabel.textContent = "Could not check the definition."; });
  }

  // A problem's path ("entry.conditions[1].left.window") names a field; shown at the deepest
  // element of the builder whose data-path is that path or a prefix of it.
  function showProblems(problems) {
    builder.querySelectorAll(".problem").forEach(function (node) { node.remove(); });
    builder.querySelectorAll(".has-error").forEach(function (node) { node.classList.remove("has-error"); });
    problemList.innerHTML = "";
    problems.forEach(function (problem) {
      var target = findTarget(problem.path);
      var message = el("small", { className: "error problem", text: problem.message, "data-problem-path": problem.path });
      if (target) {
        target.classList.add("has-error");
        target.appendChild(message);
      } else {
        problemList.appendChild(el("li", { className: "error", "data-problem-path": problem.path },
          [el("code", { text: problem.path || "definition" }), document.createTextNode(": " + problem.message)]));
      }
    });
  }

  function findTarget(path) {
    var candidate = path;
    while (true) {
      var found = builder.querySelector("[data-path=\"" + CSS.escape(candidate) + "\"]");
      if (found) { return found; }
      if (!candidate) { return null; }
      var cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
      candidate = cut > 0 ? candidate.slice(0, cut) : "";
    }
  }

  // --- operands and conditions -----------------------------------------------------------------
  function operandEditor(value, path, set) {
    var isNumber = typeof value === "number" || value === null || value === undefined;
    var type = isNumber ? "number" : value.type;
    var kinds = [["number", "a number"]].concat(catalogue.signals.map(function (s) {
      return [s.name, s.name];
    })).concat([[catalogue.talib_type, "TA-Lib function…"]]);
    var box = el("span", { className: "operand", "data-path": path });
    box.appendChild(select(kinds, type, function (next) {
      if (next === "number") { set(0); }
      else if (next === catalogue.talib_type) { set({ type: next, function: "WILLR" }); }
      else {
        var fresh = { type: next };
        var params = signalTypes[next].params;
        Object.keys(params).forEach(function (name) {
          if (params[name].required && params[name].kind === "int") { fresh[name] = 20; }
          else if (params[name].required && params[name].kind === "symbol") { fresh[name] = "TLT"; }
        });
        if (value && value.symbol) { fresh.symbol = value.symbol; }
        set(fresh);
      }
      changed(true);
    }, { "aria-label": "Operand", "class": "operand-type" }));
    if (isNumber) {
      box.appendChild(el("input", {
        type: "number", step: "any", value: value === undefined || value === null ? "" : value,
        "class": "operand-number", "aria-label": "Number",
        oninput: function (event) { set(numberOrText(event.target.value)); changed(false); }
      }));
      return box;
    }
    if (type === catalogue.talib_type) {
      box.appendChild(talibEditor(value, path));
    } else {
      var params = (signalTypes[type] || { params: {} }).params;
      Object.keys(params).forEach(function (name) {
        box.appendChild(paramInput(value, name, params[name], path + "." + name));
      });
    }
    box.appendChild(el("input", {
      value: value.symbol || "", placeholder: "run's symbol", "class": "symbol", list: "builder-symbols",
      "aria-label": "Symbol", "data-path": path + ".symbol", size: 8,
      title: "The symbol this signal reads; empty: the run's symbol (allocation rules must name one)",
      oninput: function (event) {
        var symbol = event.target.value.trim();
        if (symbol) { value.symbol = symbol; } else { delete value.symbol; }
        changed(false);
      }
    }));
    return box;
  }

  // A TA-Lib function: its name, then one field per parameter as TA-Lib describes it (kind,
  // default, help; a list such as matype as a choice), and the output when it has several.
  // Keys the function does not have stay visible, so that their problem shows where they are.
  function talibEditor(value, path) {
    var box = el("span", { className: "talib" });
    var described = talibFunctions[String(value.function || "").toUpperCase()];
    box.appendChild(el("span", { className: "param talib-name", "data-path": path + ".function" }, [
      el("input", {
        value: value.function || "", list: "talib-functions", "class": "talib-function", size: 12,
        "aria-label": "TA-Lib function", title: described ? described.display_name : "A TA-Lib function",
        onchange: function (event) {
          var name = event.target.value.trim().toUpperCase();
          Object.keys(value).forEach(function (key) {
            if (["type", "symbol"].indexOf(key) < 0) { delete value[key]; }
          });
          value.function = name;
          changed(true);
        }
      })
    ]));
    if (!described) { return box; }
    described.params.forEach(function (param) {
      box.appendChild(talibParamInput(value, param, path + "." + param.name));
    });
    if (described.outputs.length > 1) {
      box.appendChild(el("label", { className: "param", "data-path": path + ".output" }, [
        el("span", { text: "output" }),
        select([["", described.outputs[0] + " (default)"]].concat(described.outputs.slice(1).map(function (name) {
          return [name, name];
        })), value.output || "", function (next) {
          if (next) { value.output = next; } else { delete value.output; }
          changed(false);
        }, { "aria-label": "output", "class": "talib-output" })
      ]));
    }
    var known = ["type", "function", "symbol", "output"].concat(described.params.map(function (p) { return p.name; }));
    Object.keys(value).filter(function (key) { return known.indexOf(key) < 0; }).forEach(function (key) {
      box.appendChild(el("span", { className: "param unknown", "data-path": path + "." + key }, [
        el("code", { text: key + " = " + JSON.stringify(value[key]) }),
        button("×", function () { delete value[key]; changed(true); }, "small danger")
      ]));
    });
    return box;
  }

  function talibParamInput(value, param, path) {
    var label = el("label", { className: "param talib-param", "data-path": path, title: param.help || null },
      [el("span", { text: param.name })]);
    var current = value[param.name] === undefined ? "" : value[param.name];
    var input;
    if (param.choices.length) {
      input = select([["", "default (" + param.default + ")"]].concat(param.choices.map(function (choice) {
        return [choice[0], choice[0] + " · " + choice[1]];
      })), current, function (next) {
        if (next === "") { delete value[param.name]; } else { value[param.name] = Number(next); }
        changed(false);
      });
    } else {
      input = el("input", {
        type: "number", step: param.kind === "int" ? "1" : "any", value: current, size: 6,
        placeholder: String(param.default),
        oninput: function (event) {
          var next = numberOrText(event.target.value);
          if (next === null) { delete value[param.name]; } else { value[param.name] = next; }
          changed(false);
        }
      });
    }
    input.setAttribute("aria-label", param.name);
    input.setAttribute("data-talib-param", param.name);
    label.appendChild(input);
    return label;
  }

  function paramInput(signal, name, spec, path) {
    var label = el("label", { className: "param", "data-path": path }, [el("span", { text: name })]);
    var current = signal[name] === undefined ? "" : signal[name];
    var input;
    if (spec.kind === "choice") {
      input = select([["", "default (" + spec.default + ")"]].concat(spec.choices), current, function (next) {
        if (next) { signal[name] = next; } else { delete signal[name]; }
        changed(false);
      });
    } else {
      input = el("input", {
        type: spec.kind === "symbol" ? "text" : "number",
        step: spec.kind === "int" ? "1" : "any",
        min: spec.min, max: spec.max, value: current, size: 6,
        placeholder: spec.required ? "required" : String(spec.default),
        oninput: function (event) {
          var next = spec.kind === "symbol" ? event.target.value.trim() : numberOrText(event.target.value);
          if (next === null || next === "") { delete signal[name]; } else { signal[name] = next; }
          changed(false);
        }
      });
    }
    input.setAttribute("aria-label", name);
    label.appendChild(input);
    return label;
  }

  function conditionEditor(condition, path, set, remove) {
    if (condition && condition.op) {
      var group = el("div", { className: "condition group", "data-path": path });
      var head = el("div", { className: "group-head" }, [
        select(catalogue.logical_ops.map(function (op) {
          return [op, op === "and" ? "all of (and)" : "any of (or)"];
        }), condition.op, function (next) { condition.op = next; changed(false); }, { "aria-label": "Group operator" }),
        button("+ comparison", function () { condition.conditions.push(newComparison()); changed(true); }),
        button("+ group", function () {
          condition.conditions.push({ op: "or", conditions: [newComparison()] }); changed(true);
        }),
        remove ? button("Remove group", remove, "small danger") : null
      ]);
      group.appendChild(head);
      var list = el("div", { className: "group-items", "data-path": path + ".conditions" });
      condition.conditions.forEach(function (child, index) {
        list.appendChild(conditionEditor(child, path + ".conditions[" + index + "]", function (next) {
          condition.conditions[index] = next;
        }, function () { condition.conditions.splice(index, 1); changed(true); }));
      });
      group.appendChild(list);
      return group;
    }
    if (!condition) { condition = newComparison(); set(condition); }
    var row = el("div", { className: "condition comparison", "data-path": path });
    row.appendChild(operandEditor(condition.left, path + ".left", function (next) { condition.left = next; }));
    row.appendChild(select(catalogue.comparisons, condition.comparison, function (next) {
      condition.comparison = next; changed(false);
    }, { "aria-label": "Comparison", "class": "comparison-op", "data-path": path + ".comparison" }));
    row.appendChild(operandEditor(condition.right, path + ".right", function (next) { condition.right = next; }));
    row.appendChild(button("Group", function () {
      set({ op: "and", conditions: [condition] }); changed(true);
    }));
    if (remove) { row.appendChild(button("Remove", remove, "small danger")); }
    return row;
  }

  function newComparison() {
    return { left: { type: "Close" }, comparison: ">", right: { type: "SMA", window: 50 } };
  }

  // --- signal strategies -----------------------------------------------------------------------
  function signalEditor() {
    var wrap = el("div", { className: "signal-builder" });
    wrap.appendChild(builtinPicker());
    catalogue.signal_rules.forEach(function (rule) {
      var section = el("fieldset", { className: "rule", "data-path": rule, id: "rule-" + rule });
      var present = definition[rule] !== undefined && definition[rule] !== null;
      section.appendChild(el("legend", {}, [el("label", {}, [
        el("input", {
          type: "checkbox", checked: present ? "checked" : null, "class": "rule-toggle",
          onchange: function (event) {
            if (event.target.checked) { definition[rule] = newComparison(); } else { delete definition[rule]; }
            changed(true);
          }
        }),
        document.createTextNode(" " + rule.replace("_", " "))
      ])]));
      if (present) {
        section.appendChild(conditionEditor(definition[rule], rule, function (next) { definition[rule] = next; }));
      }
      wrap.appendChild(section);
    });
    return wrap;
  }

  function builtinPicker() {
    var box = el("fieldset", { className: "builtin" }, [el("legend", { text: "Start from a built-in strategy" })]);
    var params = el("span", { className: "builtin-params" });
    var chosen = { key: "", params: {} };
    var picker = select([["", "Choose…"]].concat(catalogue.plugins.map(function (p) {
      return [p.name, p.name];
    })), "", function (key) {
      chosen.key = key; chosen.params = {};
      params.innerHTML = "";
      var plugin = catalogue.plugins.filter(function (p) { return p.name === key; })[0];
      if (!plugin) { return; }
      params.appendChild(el("small", { className: "muted", text: plugin.description }));
      Object.keys(plugin.params).forEach(function (name) {
        var spec = plugin.params[name];
        params.appendChild(el("label", { className: "param", "data-path": name }, [
          el("span", { text: name }),
          el("input", {
            type: "number", step: spec.kind === "int" ? "1" : "any", min: spec.min, max: spec.max,
            value: spec.default, size: 6, "aria-label": name, title: spec.description || null,
            oninput: function (event) { chosen.params[name] = numberOrText(event.target.value); }
          })
        ]));
      });
    }, { id: "builtin-key", "aria-label": "Built-in strategy" });
    var message = el("small", { className: "error", id: "builtin-error" });
    box.appendChild(picker);
    box.appendChild(params);
    box.appendChild(button("Use it", function () {
      if (!chosen.key) { return; }
      fetch(form.dataset.builtinUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ key: chosen.key, params: chosen.params })
      }).then(function (response) { return response.json(); }).then(function (result) {
        if (result.definition) {
          definition = result.definition;
          changed(true);
        } else {
          message.textContent = (result.problems || []).map(function (p) {
            return p.path + ": " + p.message;
          }).join("; ") || result.detail;
        }
      });
    }, "small primary"));
    box.appendChild(message);
    return box;
  }

  // --- allocation strategies -------------------------------------------------------------------
  function renameGroup(oldName, newName) {
    if (!newName || newName === oldName || definition.allocations[newName]) { return false; }
    var renamed = {};
    Object.keys(definition.allocations).forEach(function (name) {
      renamed[name === oldName ? newName : name] = definition.allocations[name];
    });
    definition.allocations = renamed;
    if (definition.fallback_allocation === oldName) { definition.fallback_allocation = newName; }
    (definition.switching_logic || []).forEach(function (rule) {
      if (rule.target_allocation === oldName) { rule.target_allocation = newName; }
    });
    return true;
  }

  function allocationEditor() {
    definition.allocations = definition.allocations || {};
    definition.switching_logic = definition.switching_logic || [];
    var wrap = el("div", { className: "allocation-builder" });
    var groups = el("fieldset", { className: "groups", "data-path": "allocations" }, [el("legend", { text: "Groups" })]);
    Object.keys(definition.allocations).forEach(function (name) {
      var weights = definition.allocations[name];
      var path = "allocations." + name;
      var group = el("div", { className: "group-card", "data-path": path });
      group.appendChild(el("div", { className: "group-head" }, [
        el("input", {
          value: name, "aria-label": "Group name", "class": "group-name",
          onchange: function (event) {
            if (renameGroup(name, event.target.value.trim())) { changed(true); } else { event.target.value = name; }
          }
        }),
        button("+ symbol", function () {
          var symbol = "CASH";
          var n = 1;
          while (weights[symbol] !== undefined) { symbol = "SYMBOL" + n; n += 1; }
          weights[symbol] = 0; changed(true);
        }),
        button("Remove group", function () { delete definition.allocations[name]; changed(true); }, "small danger")
      ]));
      Object.keys(weights).forEach(function (symbol) {
        group.appendChild(el("div", { className: "weight-row", "data-path": path + "." + symbol }, [
          el("input", {
            value: symbol, list: "builder-symbols", size: 10, "aria-label": "Symbol", "class": "weight-symbol",
            title: "A symbol, CASH, or a leveraged synthetic such as QQQ?L=3",
            onchange: function (event) {
              var next = event.target.value.trim();
              if (!next || next === symbol || weights[next] !== undefined) { event.target.value = symbol; return; }
              var rebuilt = {};
              Object.keys(weights).forEach(function (key) { rebuilt[key === symbol ? next : key] = weights[key]; });
              definition.allocations[name] = rebuilt;
              changed(true);
            }
          }),
          el("input", {
            type: "number", step: "any", min: "0", max: "1", value: weights[symbol], size: 6,
            "aria-label": "Weight", "class": "weight-value",
            oninput: function (event) { weights[symbol] = numberOrText(event.target.value); changed(false); }
          }),
          button("×", function () { delete weights[symbol]; changed(true); }, "small danger")
        ]));
      });
      groups.appendChild(group);
    });
    groups.appendChild(button("+ group", function () {
      var name = "group" + (Object.keys(definition.allocations).length + 1);
      definition.allocations[name] = { CASH: 1 }; changed(true);
    }));
    wrap.appendChild(groups);

    var names = Object.keys(definition.allocations);
    var rules = el("fieldset", { className: "rules", "data-path": "switching_logic" }, [
      el("legend", { text: "Switching rules (the first that holds decides)" })
    ]);
    definition.switching_logic.forEach(function (rule, index) {
      var path = "switching_logic[" + index + "]";
      var card = el("div", { className: "rule-card", "data-path": path });
      card.appendChild(el("div", { className: "group-head" }, [
        el("span", { text: (index + 1) + "." }),
        el("input", {
          value: rule.name || "", placeholder: "name", "aria-label": "Rule name", "data-path": path + ".name",
          oninput: function (event) { rule.name = event.target.value; changed(false); }
        }),
        el("span", { text: "→ hold" }),
        el("span", { "data-path": path + ".target_allocation" }, [
          select(names.map(function (n) { return [n, n]; }).concat(
            names.indexOf(rule.target_allocation) < 0 ? [[rule.target_allocation || "", rule.target_allocation || "—"]] : []
          ), rule.target_allocation, function (next) { rule.target_allocation = next; changed(false); },
          { "aria-label": "Target group" })
        ]),
        index > 0 ? button("↑", function () {
          definition.switching_logic.splice(index - 1, 0, definition.switching_logic.splice(index, 1)[0]);
          changed(true);
        }) : null,
        button("Remove rule", function () { definition.switching_logic.splice(index, 1); changed(true); }, "small danger")
      ]));
      card.appendChild(conditionEditor(rule.condition, path + ".condition", function (next) { rule.condition = next; }));
      rules.appendChild(card);
    });
    rules.appendChild(button("+ rule", function () {
      definition.switching_logic.push({
        name: "rule " + (definition.switching_logic.length + 1),
        condition: { left: { type: "Close", symbol: "SPY" }, comparison: ">", right: { type: "SMA", symbol: "SPY", window: 200 } },
        target_allocation: names[0] || ""
      });
      changed(true);
    }));
    wrap.appendChild(rules);

    wrap.appendChild(el("fieldset", { className: "fallback", "data-path": "fallback_allocation" }, [
      el("legend", { text: "Fallback (when no rule holds)" }),
      select([["", "—"]].concat(names.map(function (n) { return [n, n]; })), definition.fallback_allocation,
        function (next) { definition.fallback_allocation = next; changed(false); }, { "aria-label": "Fallback group", id: "fallback-select" })
    ]));
    return wrap;
  }

  // --- views -----------------------------------------------------------------------------------
  function render() {
    builder.innerHTML = "";
    if (definition === null || typeof definition !== "object" || Array.isArray(definition)) {
      builder.appendChild(el("p", { className: "muted", text: "The definition is not an object; edit it in the JSON view or start again." }));
      builder.appendChild(button("Start from an example", function () {
        definition = JSON.parse(JSON.stringify(starters[kindSelect.value])); changed(true);
      }));
      return;
    }
    builder.appendChild(kindSelect.value === "allocation" ? allocationEditor() : signalEditor());
  }

  function readJSON() {
    var text = textarea.value.trim();
    if (text === "") { return { ok: true, value: null }; }
    try { return { ok: true, value: JSON.parse(text) }; }
    catch (error) { return { ok: false, message: error.message }; }
  }

  function showView(next) {
    if (next === "builder") {
      var parsed = readJSON();
      if (!parsed.ok) {
        jsonError.textContent = "The JSON cannot be read, so the builder cannot show it: " + parsed.message;
        jsonError.hidden = false;
        return;
      }
      definition = parsed.value;
      render();
    }
    jsonError.hidden = true;
    view = next;
    builder.hidden = next !== "builder";
    jsonView.hidden = next !== "json";
    document.querySelectorAll(".tabs .tab").forEach(function (tab) {
      tab.classList.toggle("active", tab.dataset.view === next);
    });
    scheduleValidation();
  }

  document.querySelectorAll(".tabs .tab").forEach(function (tab) {
    tab.addEventListener("click", function () { showView(tab.dataset.view); });
  });
  textarea.addEventListener("input", function () {
    var parsed = readJSON();
    if (parsed.ok) { definition = parsed.value; jsonError.hidden = true; scheduleValidation(); }
    else { jsonError.textContent = "Not valid JSON yet: " + parsed.message; jsonError.hidden = false; }
  });
  kindSelect.addEventListener("change", function () {
    var isAllocation = definition && typeof definition === "object" && "allocations" in definition;
    if ((kindSelect.value === "allocation") !== Boolean(isAllocation)) {
      definition = JSON.parse(JSON.stringify(starters[kindSelect.value]));
      textarea.value = JSON.stringify(definition, null, 2);
    }
    render();
    scheduleValidation();
  });
  universeInput.addEventListener("change", scheduleValidation);

  var datalist = el("datalist", { id: "builder-symbols" });
  catalogue.symbols.concat(["CASH"]).forEach(function (symbol) { datalist.appendChild(el("option", { value: symbol })); });
  var talibList = el("datalist", { id: "talib-functions" });
  catalogue.talib_functions.forEach(function (described) {
    talibList.appendChild(el("option", { value: described.name, label: described.name + " · " + described.display_name }));
  });
  form.appendChild(datalist);
  form.appendChild(talibList);

  var initial = readJSON();
  if (initial.ok) {
    definition = initial.value;
    render();
    if (serverProblems.length) { showProblems(serverProblems); }
  } else {
    showView("json");
    jsonError.textContent = "The JSON cannot be read: " + initial.message;
    jsonError.hidden = false;
  }
})();
