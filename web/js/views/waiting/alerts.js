// How the waiting room reaches a patient who is not looking at it: a browser notification (if
// allowed), the tab's title (a tab in the background still shows it), and a short sound (if the
// patient switched it on here: a page may only make sound after a tap, so the switch is that tap).

import { h, replace } from '../../dom.js';
import { t } from '../../i18n.js';

const SOUND_KEY = 'medpharma-sound';

function notificationsSupported() {
  return 'Notification' in window;
}

export function notify(title, body) {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const note = new Notification(title, { body, tag: 'medpharma-turn', renotify: true });
    note.onclick = () => { window.focus(); note.close(); };
  } catch {
    // Some mobile browsers only notify from a service worker; the page itself already shows it.
  }
}

function soundWanted() {
  try { return localStorage.getItem(SOUND_KEY) === 'on'; } catch { return false; }
}

let audio = null;  // one AudioContext, started by the patient's own tap

function startAudio() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  audio?.resume?.();
}

/** Two short tones (no sound file to fetch): only when the patient switched sound on. */
export function chime() {
  if (!soundWanted()) return;
  startAudio();
  if (!audio) return;
  const start = audio.currentTime;
  [[880, 0], [1320, 0.22]].forEach(([frequency, offset]) => {
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.2, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.2);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.2);
  });
}

/** The switch for the sound, remembered on this device. */
export function soundSwitch() {
  const id = 'sound-switch';
  const input = h('input', { type: 'checkbox', id, checked: soundWanted(),
    onchange() {
      try { localStorage.setItem(SOUND_KEY, input.checked ? 'on' : 'off'); } catch { /* private mode */ }
      if (input.checked) startAudio();
    } });
  return h('div', { class: 'check' }, input, h('label', { for: id }, t('wait.sound')));
}

/**
 * The tab's title says the news while the page is in the background ("It is your turn · …"), and
 * goes back to the page's own title when the patient looks at it.
 */
export function tabTitle() {
  let original = null;
  const restore = () => {
    if (document.visibilityState === 'visible' && original !== null) {
      document.title = original;
      original = null;
    }
  };
  document.addEventListener('visibilitychange', restore);
  return {
    show(text) {
      if (document.visibilityState === 'visible') return;
      if (original === null) original = document.title;
      document.title = `${text} · ${original}`;
    },
    stop() {
      document.removeEventListener('visibilitychange', restore);
      if (original !== null) document.title = original;
    },
  };
}
