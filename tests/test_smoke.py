from tests.harness import Harness
from tests.slack_payloads import new_ts


async def test_thumbs_up_reaches_contextual(harness: Harness) -> None:
    answer = await harness.contextual_answer()
    await harness.slack.react("U0ALICE001", "+1", answer["ts"])
    received = await harness.contextual.wait_for(1)
    assert received[0].body == {"message_id": answer["message_id"], "feedback": "thumbs_up"}
    assert received[0].path_params == {"tail": f"v1/agents/{answer['agent_id']}/feedback"}
    r = await harness.http.get(f"{harness.base_url}/healthz")
    assert r.json()["deliveries"]["pending"] == 0
    assert new_ts()
