"""A game of Connect Four played to its end in the browser, each move checked by the rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import expect

from selfimprove.games.alphazero import make_game
from selfimprove.web import play
from selfimprove.web.play import PlaySettings
from selfimprove.web.server import background_server
from tests.reports.browser import browser_page
from tests.web.pages import HEIGHT, WIDTH, log_in, post_json, screenshot


def winner(moves: list[int]) -> str:
    """'first', 'second' or 'draw', replaying the moves with the rules; the game must end."""
    game, _ = make_game("connect4")
    board = game.initial(1)
    for ply, action in enumerate(moves):
        assert game.legal_actions(board)[0, action], (ply, action)
        step = game.play(board, np.array([action]))
        board = step.boards
        if step.terminal[0]:
            assert ply == len(moves) - 1, "moves after the end"
            if step.mover_result[0] == 0:
                return "draw"
            return "first" if ply % 2 == 0 else "second"
    raise AssertionError("the game did not end")


def test_a_game_of_connect_four_is_played_to_its_end(tmp_path: Path) -> None:
    fast = PlaySettings(simulations=16, shipped=False)
    with (
        background_server(tmp_path, play=fast) as (base, token),
        browser_page(WIDTH, HEIGHT) as page,
    ):
        log_in(page, base, token, "/play/connect4")
        board = page.locator("#board")
        expect(board.locator(".cell")).to_have_count(42)
        keys = 0
        while not page.locator("#result").inner_text():
            expect(board).to_have_attribute("data-busy", "false")
            if page.locator("#result").inner_text():
                break
            legal = json.loads(board.get_attribute("data-legal") or "[]")
            moves = json.loads(board.get_attribute("data-moves") or "[]")
            column = 3 if 3 in legal and len(moves) < 6 else legal[0]
            if keys % 2:
                page.keyboard.press(str(column + 1))  # keys 1-7 name the columns
            else:
                board.locator(".cell").nth(column).click()  # the top cell of the column
            keys += 1
            # the page marks itself busy at once, until the agent's answer is drawn
            expect(board).not_to_have_attribute("data-plies", str(len(moves)))
            expect(board).to_have_attribute("data-busy", "false")
            assert keys <= 21
        moves = json.loads(board.get_attribute("data-moves") or "[]")
        result = winner(moves)
        shown = {"first": "You win", "second": "The agent wins", "draw": "Draw"}[result]
        expect(page.locator("#result")).to_have_text(shown)
        assert len(moves) >= 7 and board.locator(".cell.you").count() == (len(moves) + 1) // 2
        assert board.locator(".cell.agent").count() == len(moves) // 2
        screenshot(page, "play.png")


def test_the_play_rules_are_alphazeros_and_a_tictactoe_game_over_http_ends_by_the_rules(
    tmp_path: Path,
) -> None:
    for name in ("connect4", "tictactoe"):
        assert type(play.make_game(name)) is type(make_game(name)[0])
    fast = PlaySettings(simulations=50, shipped=False)
    with background_server(tmp_path, play=fast) as (base, token):
        moves: list[int] = []
        answer: dict[str, Any] = {"result": None, "legal": list(range(9))}
        while answer["result"] is None:
            legal = answer["legal"]
            assert legal
            reply = post_json(base, "/api/play/tictactoe", {"moves": [*moves, legal[-1]]}, token)
            assert reply.status == 200, reply.text
            answer = reply.json()
            assert answer["moves"][: len(moves) + 1] == [*moves, legal[-1]]
            moves = answer["moves"]
        game = make_game("tictactoe")[0]
        position = play.replay(game, tuple(moves))
        assert position.result == answer["result"] and position.legal == ()
        assert answer["board"] == position.board.astype(int).tolist()
        # the agent with 50 simulations never loses to "always the last free cell"
        assert answer["result"] in ("second", "draw"), moves
        again = post_json(base, "/api/play/tictactoe", {"moves": moves}, token).json()
        assert again["agent_move"] is None and again["moves"] == moves
