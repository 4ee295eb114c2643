// The pages draw three kinds of traces (static/js): scatter (lines and markers; in the core),
// bar and heatmap. Nothing else is registered, so nothing else is shipped.
var Plotly = require('plotly.js/lib/core');

Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap')]);

module.exports = Plotly;
