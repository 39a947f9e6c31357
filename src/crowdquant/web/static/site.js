// crowdquant: just enough script for the pages: live countdowns and sortable tables.
"use strict";

// The tournament's clock, which may be simulated: its time when the page was made and how
// many of its seconds pass per real second (the body's data-now and data-rate).
const loadedAt = Date.now();

function tournamentNow() {
  const page = document.body.dataset;
  const then = page.now ? Date.parse(page.now) : loadedAt;
  const rate = page.rate !== undefined ? Number(page.rate) : 1;
  return then + (Date.now() - loadedAt) * rate;
}

function remaining(until) {
  let seconds = Math.max(0, Math.floor((until - tournamentNow()) / 1000));
  if (seconds === 0) return "CLOSED";
  const days = Math.floor(seconds / 86400); seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600); seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60); seconds -= minutes * 60;
  return `${days}D ${hours}H ${minutes}M ${seconds}S REMAIN`;
}

function startCountdowns() {
  const clocks = document.querySelectorAll("[data-countdown]");
  const tick = () => clocks.forEach((el) => {
    el.textContent = remaining(Date.parse(el.dataset.countdown));
  });
  if (clocks.length) { tick(); setInterval(tick, 1000); }
}

function sortable(table) {
  table.querySelectorAll("th[data-sort]").forEach((th, column) => {
    th.addEventListener("click", () => {
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const descending = th.dataset.order !== "desc";
      const key = (row) => {
        const cell = row.cells[th.cellIndex];
        const raw = cell.dataset.value ?? cell.textContent.trim();
        const number = Number(raw);
        return raw !== "" && !Number.isNaN(number) ? number : raw.toLowerCase();
      };
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      th.dataset.order = descending ? "desc" : "asc";
      rows.forEach((row) => body.appendChild(row));
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  startCountdowns();
  document.querySelectorAll("table.sortable").forEach(sortable);
});
