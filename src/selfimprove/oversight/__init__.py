"""Human oversight: review items and decisions (`queue.py`), the tamper-evident audit log
(`audit.py`), review gates in the loop (`stage.py`), simulated reviewers (`reviewers.py`),
agreement between reviewers (`agreement.py`) and exports of reviewed data (`exports.py`).
The terminal review is `cli/review.py`, the web app `web/`. Loops meet oversight only
through `core/review.py`."""
