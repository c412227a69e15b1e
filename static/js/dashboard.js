// The SMS dashboards' charts: Chart.js draws each <figure data-chart> from the
// table the server rendered beside it (data-chart-table), which stays on the
// page as the chart's accessible form. Labels come localised from the server;
// the axis numbers are formatted here in the page's language.
(function () {
  "use strict";

  let loading = null;

  function loadChartJs(src) {
    // Loaded on the first page that has a chart: the other pages never pay for it.
    if (window.Chart) return Promise.resolve();
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = src;
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function readTable(table) {
    const series = Array.from(table.querySelectorAll("thead [data-series]")).map(function (cell) {
      return cell.textContent.trim();
    });
    const labels = [];
    const values = series.map(function () { return []; });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      labels.push(row.querySelector("th").textContent.trim());
      row.querySelectorAll("td[data-value]").forEach(function (cell, index) {
        values[index].push(Number(cell.dataset.value));
      });
    });
    return { labels: labels, datasets: series.map(function (label, index) { return { label: label, data: values[index] }; }) };
  }

  const COLOURS = ["#1d6fb8", "#0f8a6a", "#c0392b", "#8e44ad"];

  function draw(figure) {
    const table = document.getElementById(figure.dataset.chartTable);
    const canvas = figure.querySelector("canvas");
    if (!table || !canvas) return;
    const existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    const numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);
    const data = readTable(table);
    const type = figure.dataset.chart;
    data.datasets.forEach(function (dataset, index) {
      const colour = COLOURS[index % COLOURS.length];
      dataset.backgroundColor = type === "line" ? colour + "33" : (data.labels.length <= 3 ? COLOURS : colour);
      dataset.borderColor = colour;
      dataset.fill = type === "line";
      dataset.tension = 0.2;
    });
    new window.Chart(canvas, {
      type: type,
      data: data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0, callback: function (value) { return numbers.format(value); } } },
          x: { ticks: { autoSkip: true, maxRotation: 0 } },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (context) { return context.dataset.label + ": " + numbers.format(context.parsed.y); },
            },
          },
        },
      },
    });
  }

  function drawAll() {
    const figures = document.querySelectorAll("figure[data-chart]");
    const holder = document.querySelector("[data-chart-src]");
    if (!figures.length || !holder) return;
    loadChartJs(holder.dataset.chartSrc).then(function () { figures.forEach(draw); });
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  // htmx: a swapped panel brings a new table; its chart is drawn again.
  document.addEventListener("htmx:afterSettle", drawAll);
  // Printed pages are narrower than the screen: the charts fit themselves to them.
  window.addEventListener("beforeprint", function () {
    if (!window.Chart) return;
    Object.values(window.Chart.instances).forEach(function (chart) { chart.resize(); });
  });
})();
