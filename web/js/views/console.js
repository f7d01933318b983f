// The doctor's console lives in views/console/: page.js (loading, live updates, layout), queue.js
// (the waiting list), now.js (the in-consultation card and Call next), numbers.js (the day in
// numbers), status.js (late / away), confirm.js (the confirmation before a final action).
export { consolePage } from './console/page.js';
