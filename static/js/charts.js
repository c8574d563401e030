// Render plotly figures built server-side (benchmarks/charts.py) and wire clicks to request pages.
window.llmperf = window.llmperf || {};

llmperf.plotFigure = function (divId, dataId) {
  const fig = JSON.parse(document.getElementById(dataId).textContent);
  return Plotly.newPlot(divId, fig.data, fig.layout, {responsive: true, displaylogo: false});
};

llmperf.plotFinished = function (requestUrlZero) {
  document.querySelectorAll(".chart[data-figure]").forEach((div) => {
    llmperf.plotFigure(div.id, div.dataset.figure).then((gd) => {
      gd.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.customdata !== undefined) {
          window.location = requestUrlZero.replace(/\/0\/$/, "/" + point.customdata + "/");
        }
      });
    });
  });
};
