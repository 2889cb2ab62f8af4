"""The official python-telegram-bot library against the local Bot API server.

Usage: ptb_client.py BASE_URL TOKEN CHAT_ID
Only the base URL differs from talking to api.telegram.org. Prints "ptb ok" at the end;
any mismatch raises.
"""
import asyncio
import sys

import telegram
from telegram.error import BadRequest, InvalidToken, RetryAfter


async def main(base_url: str, token: str, chat_id: int) -> None:
    bot = telegram.Bot(token, base_url=f"{base_url}/bot")
    async with bot:  # initialize() calls getMe
        me = await bot.get_me()
        assert me.is_bot and me.id == int(token.split(":")[0]), me
        assert me.username == "quantfold_sim_bot", me

        sent = await bot.send_message(chat_id, "first: BTCUSDT long 0.01 @ 43000")
        assert sent.message_id == 1 and sent.chat.id == chat_id and sent.chat.type == "private", sent
        assert sent.text == "first: BTCUSDT long 0.01 @ 43000" and sent.from_user.is_bot, sent

        # Scripted: request 2 is a 429 with retry_after 1.
        try:
            await bot.send_message(chat_id, "flooded")
            raise AssertionError("a 429 did not raise RetryAfter")
        except RetryAfter as e:
            assert e.retry_after in (1, __import__("datetime").timedelta(seconds=1)), e.retry_after

        # Unknown chats and empty texts are Bad Requests with Telegram's descriptions.
        try:
            await bot.send_message(999, "to nobody")
            raise AssertionError("an unknown chat was accepted")
        except BadRequest as e:
            assert "chat not found" in e.message.lower(), e.message
        try:
            await bot.send_message(chat_id, " ")
            raise AssertionError("an empty text was accepted")
        except BadRequest as e:
            assert "message text is empty" in e.message.lower(), e.message
        try:
            await bot.send_message(chat_id, "x" * 4097)
            raise AssertionError("a text over 4096 was accepted")
        except BadRequest as e:
            assert "message is too long" in e.message.lower(), e.message

        second = await bot.send_message(chat_id, "second")
        assert second.message_id == 2, second

    # A token of the right form that is not the bot's.
    other = telegram.Bot("42:" + "x" * 35, base_url=f"{base_url}/bot")
    try:
        await other.get_me()
        raise AssertionError("a wrong token was accepted")
    except InvalidToken:
        pass
    print("ptb ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
