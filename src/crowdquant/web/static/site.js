// crowdquant: just enough script for the pages: live countdowns and sortable tables.
"use strict";

// The tournament's clock, which may be simulated: its time when the page was made (the
// body's data-now) and how many of its seconds pass per real second (data-rate).
const loadedAt = Date.now();

function pageNow() {
  const now = document.body.dataset.now;
  return now ? Date.parse(now) : loadedAt;
}

function tournamentNow() {
  const rate = document.body.dataset.rate;
  return pageNow() + (Date.now() - loadedAt) * (rate !== undefined ? Number(rate) : 1);
}

function remaining(until) {
  let seconds = Math.max(0, Math.floor((until - tournamentNow()) / 1000));
  if (seconds === 0) return "CLOSED";
  const days = Math.floor(seconds / 86400); seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600); seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60); seconds -= minutes * 60;
  return `${days}D ${hours}H ${minutes}M ${seconds}S REMAIN`;
}

// The end of a countdown by the tournament's clock: the page's time plus the seconds left
// when the page was drawn, else the close time itself.
function countdownEnd(el) {
  const left = Number(el.dataset.secondsLeft);
  if (el.dataset.secondsLeft !== undefined && Number.isFinite(left)) return pageNow() + left * 1000;
  return Date.parse(el.dataset.countdown);
}

function startCountdowns() {
  const clocks = Array.from(document.querySelectorAll("[data-countdown]"))
    .map((el) => [el, countdownEnd(el)]);
  const tick = () => clocks.forEach(([el, until]) => {
    el.textContent = remaining(until);
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
