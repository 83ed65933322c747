"""The HTTP server: one module per group of routes, and the table that puts them together.

    server.py    the route table (build_web_app), the runner and its connection limits
    request.py   a request's body read within its limits; errors as JSON
    auth.py      the answers API's door: the bearer token
    slack.py     Slack's request URL, /slack/events (HTTP mode)
    answers.py   the answers API, /v1/answers
    votes.py     the votes stream, /v1/votes
    health.py    /healthz and /metrics

handlers/ is wired in only by bot.app (the fast lane arrives as a bot.slack.inbound.FastDoor).
May import: bot.domain, bot.support, bot.slack, bot.answers, bot.votes, bot.services and
storage."""
