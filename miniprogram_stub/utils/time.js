// Times as residents read them: China time (UTC+8, no daylight saving), whatever the phone's own zone.
// "2026年12月03日 09:05", as the H5 tracking page writes them (backend/timefmt.py).
const CHINA_OFFSET_MS = 8 * 60 * 60 * 1000;

function pad(n) {
  return n < 10 ? "0" + n : String(n);
}

function chinaTime(iso) {
  const ms = Date.parse(iso);
  if (isNaN(ms)) return "";
  const t = new Date(ms + CHINA_OFFSET_MS);
  return t.getUTCFullYear() + "年" + pad(t.getUTCMonth() + 1) + "月" + pad(t.getUTCDate()) + "日 " + pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
}

// A day as the pages write it: "2026-12-13" (a date the backend gives in China time) → "2026年12月13日".
function chinaDay(isoDay) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(isoDay || "");
  return m ? m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日" : "";
}

// The hour and minute of a moment in China time: "09:05".
function chinaClock(iso) {
  const ms = Date.parse(iso);
  if (isNaN(ms)) return "";
  const t = new Date(ms + CHINA_OFFSET_MS);
  return pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
}

module.exports = { chinaTime: chinaTime, chinaDay: chinaDay, chinaClock: chinaClock };
