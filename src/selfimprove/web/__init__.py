"""`selfimprove serve`: a local web app over the runs folder (the runs dashboard with live
metrics, the review queue and adjudication, games to play against an agent).

`app.py` holds the routes, `auth.py` the token and the checks every request passes,
`runs.py` and `detail.py` read runs (read-only, fast), `review.py` the queue as the page sees
it, `play.py` the games, `server.py` runs it; `docs/web.md` states what each protection
guarantees.
"""
