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

module.exports = { chinaTime: chinaTime };
