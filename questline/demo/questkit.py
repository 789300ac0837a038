"""The QuestKit demo app: its catalog file and a curl walkthrough against a running server."""

from __future__ import annotations

from pathlib import Path

DEMO_CATALOG_PATH = Path(__file__).with_name("questkit_demo.json")
DEMO_APP_ID = "demo"
DEMO_SECRET_ENV = "QUESTLINE_DEMO_APP_SECRET"


def demo_curl_sequence(base_url: str) -> str:
    """A copy-pasteable shell session: token, event, missions, claim, balance.

    It reads the secret from the same variable the server does (default
    ``demo-secret``) and parses JSON with python3, so it needs nothing but curl.
    """
    base = base_url.rstrip("/")
    return f"""\
# QuestKit demo (app "{DEMO_APP_ID}") - paste into a shell:
BASE={base}
SECRET="${{{DEMO_SECRET_ENV}:-demo-secret}}"
# 1. mint a token for user alice (backend-side: needs the app secret)
TOKEN=$(curl -s -X POST "$BASE/v1/auth/token" -H 'Content-Type: application/json' \\
  -d '{{"appId":"{DEMO_APP_ID}","appSecret":"'"$SECRET"'","userId":"alice"}}' \\
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# 2. send an event (completes "daily-checkin" and "first-steps")
curl -s -X POST "$BASE/v1/events" -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json' -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" \\
  -d '{{"userId":"alice","name":"app.opened","payload":{{}},"timestamp":'"$(date +%s000)"'}}'; echo
# 3. list missions with alice's progress
curl -s "$BASE/v1/missions?status=completed" -H "Authorization: Bearer $TOKEN"; echo
# 4. claim the daily check-in reward (10 coins)
curl -s -X POST "$BASE/v1/missions/daily-checkin/claim" -H "Authorization: Bearer $TOKEN" \\
  -H 'Content-Type: application/json'; echo
# 5. read the balance
curl -s "$BASE/v1/balance/coins" -H "Authorization: Bearer $TOKEN"; echo
# 6. what to do next
curl -s "$BASE/v1/recommendations" -H "Authorization: Bearer $TOKEN"; echo
"""
