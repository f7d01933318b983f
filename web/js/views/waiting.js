// The waiting room lives in views/waiting/: page.js (loading, live updates, layout), status.js
// (the one status card: what a patient reads), alerts.js (notifications, the tab's title, sound).
export { waitingPage } from './waiting/page.js';
