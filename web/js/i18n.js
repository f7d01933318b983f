// The app's languages: every user-facing string lives in one catalogue per language
// (web/js/i18n/<code>.js, a default-exported flat object of key → text), looked up with t().
//
// Why a catalogue module per language and a dynamic import: adding a language is adding one file;
// the page loads only the catalogue it speaks. The language is `?lang=` when given (remembered for
// the tab), else the first of the browser's languages we have a catalogue for, else English.
// Texts take `{name}` placeholders; a text that depends on a number is an object of
// Intl.PluralRules categories ({one, other, …}) chosen by `vars.count`.

import english from './i18n/en.js';

/** The languages with a catalogue, in the order offered to the user. Adding one: add its file here. */
export const LANGUAGES = { en: 'English', fr: 'Français' };

const FALLBACK = 'en';

function requested() {
  const fromQuery = new URLSearchParams(location.search).get('lang');
  if (fromQuery && fromQuery in LANGUAGES) {
    try { sessionStorage.setItem('medpharma-lang', fromQuery); } catch { /* private mode */ }
    return fromQuery;
  }
  let remembered = null;
  try { remembered = sessionStorage.getItem('medpharma-lang'); } catch { /* private mode */ }
  if (remembered && remembered in LANGUAGES) return remembered;
  for (const tag of navigator.languages || [navigator.language]) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (base in LANGUAGES) return base;
  }
  return FALLBACK;
}

/** The language this page speaks ("en", "fr"). */
export const lang = requested();

/**
 * The locale given to Intl: the browser's own tag when it speaks this language ("en-GB" writes
 * 14:05 and 8 December, "en-US" 2:05 PM and December 8), else the bare language.
 */
export const locale = (navigator.languages || [navigator.language])
  .find((tag) => String(tag).toLowerCase().split('-')[0] === lang) || lang;

const catalogue = lang === FALLBACK ? english : (await import(`./i18n/${lang}.js`)).default;
document.documentElement.lang = lang;

const pluralRules = new Intl.PluralRules(locale);

/**
 * The text for `key` in this page's language (English when the catalogue lacks it, the key itself
 * when no catalogue has it, so a missing string shows up in tests rather than as a blank).
 */
export function t(key, vars = {}) {
  let text = catalogue[key] ?? english[key] ?? key;
  if (text && typeof text === 'object') {
    text = text[pluralRules.select(Number(vars.count ?? 0))] ?? text.other;
  }
  return String(text).replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
