"""The official SDKs (openai 3.63.0, anthropic 2.17.0) against the local server, with only the
base URLs changed.

Usage: python3 sdk_client.py OPENAI_BASE_URL ANTHROPIC_BASE_URL

The server runs with the script `429:0.05@3,529@5,500@9-11` (see tests/sdk.rs), so the requests
below must go out in this order: the Rust side checks the server's request log against it.
Exits non-zero (AssertionError or an SDK exception) on any mismatch.
"""

import json
import sys

import anthropic
import openai

OPENAI_URL, ANTHROPIC_URL = sys.argv[1], sys.argv[2]
KEY = "qf-test-key"

PROMPT = (
    "MARKET_SNAPSHOTS: {\"symbol\": \"BTCUSDT\", \"current_price\": [60000, 61000, 62000], "
    "\"ema20\": [59000, 59500, 60000], \"rsi14\": [50, 55, 58]}\n"
    "ACCOUNT: account_value 10000\nReturn only the JSON decision."
)
NUMBER = {"type": "number", "minimum": 0}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "signal", "symbol", "leverage", "position_size_usd", "entry_price", "stop_loss",
        "take_profit", "risk_usd", "confidence", "invalidation_condition", "reasoning",
    ],
    "properties": {
        "signal": {"type": "string", "enum": ["buy_to_enter", "sell_to_enter", "hold", "close"]},
        "symbol": {"type": "string", "minLength": 1},
        "leverage": {"type": "integer", "minimum": 0},
        "position_size_usd": NUMBER,
        "entry_price": NUMBER,
        "stop_loss": NUMBER,
        "take_profit": NUMBER,
        "risk_usd": NUMBER,
        "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        "invalidation_condition": {"type": "string"},
        "reasoning": {"type": "string"},
    },
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "decision", "strict": True, "schema": SCHEMA}}
TOOL = {"name": "submit_decision", "description": "Submit the trading decision.", "input_schema": SCHEMA}
MESSAGES = [{"role": "user", "content": PROMPT}]


def check_decision(decision):
    assert set(decision) == set(SCHEMA["required"]), decision
    assert decision["signal"] == "buy_to_enter", decision
    assert decision["symbol"] == "BTCUSDT", decision
    assert decision["stop_loss"] < decision["entry_price"] < decision["take_profit"], decision
    assert 0 <= decision["confidence"] <= 100, decision


oai = openai.OpenAI(api_key=KEY, base_url=OPENAI_URL, max_retries=2, timeout=20)
claude = anthropic.Anthropic(api_key=KEY, base_url=ANTHROPIC_URL, max_retries=2, timeout=20)


def openai_decision():
    completion = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are a trader."}] + MESSAGES,
        response_format=FORMAT,
        max_completion_tokens=1024,
    )
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-"), completion
    assert choice.finish_reason == "stop" and choice.message.refusal is None, choice
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0, completion.usage
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    check_decision(json.loads(choice.message.content))


def anthropic_decision():
    message = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=1024,
        system="You are a trader.",
        messages=MESSAGES,
        tools=[TOOL],
        tool_choice={"type": "tool", "name": "submit_decision"},
    )
    assert message.type == "message" and message.id.startswith("msg_"), message
    assert message.stop_reason == "tool_use", message
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "submit_decision", block
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
    check_decision(block.input)


# 1, 2: a strict json_schema completion and a forced tool use.
openai_decision()
anthropic_decision()
# 3 (429 with retry-after-ms 50), 4: the SDK waits and retries.
openai_decision()
# 5 (529 overloaded), 6: retried too.
anthropic_decision()

# 7, 8: invalid requests become the SDKs' typed exceptions, not retried.
try:
    oai.chat.completions.create(model="gpt-4o-mini", messages=[])
    raise AssertionError("an empty messages list must be refused")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.code == "empty_array" and e.param == "messages", e.body
try:
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=0, messages=MESSAGES)
    raise AssertionError("max_tokens 0 must be refused")
except anthropic.BadRequestError as e:
    assert e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error", e.body

# 9, 10, 11: 500 three times: the first try and both retries fail.
try:
    openai_decision()
    raise AssertionError("three 500s must exhaust two retries")
except openai.InternalServerError as e:
    assert e.status_code == 500 and e.body["type"] == "server_error", e.body

print("sdk ok: openai", openai.__version__, "anthropic", anthropic.__version__)
