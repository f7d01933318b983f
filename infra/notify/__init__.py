"""Notifications that reach a patient whose page is closed: Web Push (RFC 8030/8291/8292) and the
clinic's webhooks (Standard Webhooks), delivered at least once.

- `url_guard`: where the server may send (https to public addresses, checked at every connection);
- `push`: the VAPID key, payload encryption and the push request (pywebpush / py-vapid);
- `webhooks`: secrets and signatures (the Standard Webhooks reference library);
- `records`: the store documents (subscriptions, webhooks, deliveries), claims with a lease, back-off;
- `sender`: one HTTP attempt, off the event loop's critical path, with timeouts and a capped answer;
- `worker`: claims due deliveries and attempts them with bounded concurrency.
"""
