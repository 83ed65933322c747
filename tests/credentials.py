"""The secrets the tests give the bot: real-looking, so that a leak would be visible in
logs, bodies and the database."""

BOT_TOKEN = "xoxb-2071234567890-4112345678901-Zq8tV3kLmN0pQr5sTu7vWx9y"
APP_TOKEN = "xapp-1-A0APP0001-4112345678901-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CONTEXTUAL_KEY = "key-ctx-5Jd8sK2mQ9vX4bT7nW1eR6yU3oP0aZ"
AQUILAX_KEY = "pat-aqx-7Hq2Lm9Vt4Nc8Xw1Rb6Zy3Kd0Fs5Gp"
API_TOKEN = "api-tok-c2VjcmV0LWFwaS10b2tlbi0xMjM0NTY"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, CONTEXTUAL_KEY, AQUILAX_KEY, API_TOKEN)
