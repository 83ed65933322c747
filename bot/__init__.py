"""feedback-bot: Slack reactions and buttons on AI answers, delivered as provider feedback."""
