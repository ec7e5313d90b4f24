// Reports: each chart is drawn from the table beside it (columns marked data-series, cells
// data-cents), so the chart and the figures a screen reader reads cannot disagree.
"use strict";

const COLORS = ["#1e6fb8", "#c2570c", "#4b5563", "#15803d"];

function drawChart(canvas) {
  const table = document.getElementById(canvas.dataset.chartTable);
  const headers = [...table.tHead.rows[0].cells];
  const series = headers.map((th, i) => [th.dataset.series, i]).filter(([name]) => name);
  const rows = [...table.tBodies[0].rows].filter((tr) => tr.querySelector("[data-cents]"));
  const money = new Intl.NumberFormat(undefined, { style: "currency", currency: canvas.dataset.currency || "USD" });
  const stacked = canvas.dataset.stacked === "true";
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((tr) => tr.cells[0].textContent.trim()),
      datasets: series.map(([name, column], n) => ({
        label: name,
        backgroundColor: COLORS[n % COLORS.length],
        data: rows.map((tr) => Number(tr.cells[column].dataset.cents) / 100),
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {
        x: { stacked },
        y: { stacked, beginAtZero: true, ticks: { callback: (value) => money.format(value) } },
      },
      plugins: {
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${money.format(item.parsed.y)}` } },
      },
    },
  });
  canvas.dataset.rendered = String(chart.data.datasets.length);
}

document.querySelectorAll("canvas[data-chart-table]").forEach(drawChart);
