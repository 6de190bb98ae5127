"""Front-end housekeeping requests: a chat front-end (Open WebUI) asks its chat model for a title, tags,
follow-up suggestions, search queries or an autocompletion, in a prompt that carries the chat inside an
instruction ("### Task: ... JSON format: { "title": ... } ... <chat_history> ... </chat_history>").

They are not questions about the news: answering them by retrieval quoted unrelated sentences, and the title
prompt (over 1,000 characters) was refused outright. They are answered here without retrieval, in the JSON the
front-end parses: a title from the chat's first question, no tags, no search queries, no autocompletion, and
follow-ups drawn from the articles the chat's answers cited. Other tasks are refused with a message that says
how to give the front-end a task model of its own.
"""

from __future__ import annotations

import json
import re

_TASK = re.compile(r"^\s*#+\s*Task:", re.IGNORECASE)
_HISTORY = re.compile(r"<chat_history>(.*?)</chat_history>", re.DOTALL | re.IGNORECASE)
# The key of the JSON the task asks for: `JSON format: { "title": ...`, `JSON format: `{ "text": ...`.
_OUTPUT_KEY = re.compile(r"JSON format:\s*`?\s*\{\s*\"(\w+)\"", re.IGNORECASE)
_TURN = re.compile(r"^(USER|ASSISTANT):\s?", re.MULTILINE)
# An article heading in our answers' Sources list: `- **Title** (source, date)` or `- [Title](url) (…)`.
_CITED = re.compile(r"^- (?:\*\*(.+?)\*\*|\[(.+?)\]\(\S+?\))(?: \(|$)", re.MULTILINE)
ANSWERED = ("title", "tags", "follow_ups", "queries", "text")
REFUSED = (
    "newsrag answers questions about its news articles; it does not run a chat front-end's {key!r} task. "
    "Give the front-end a task model of its own (Open WebUI: Admin settings → Interface → Task model), or turn "
    "the task off there."
)


def task_of(text: str) -> str | None:
    """The JSON key a front-end task prompt asks for ("title", "tags", ...); None for a question."""
    if not _TASK.match(text) or not _HISTORY.search(text):
        return None
    key = _OUTPUT_KEY.search(text)
    return key.group(1) if key else "unknown"


def _turns(text: str, role: str) -> list[str]:
    history = _HISTORY.search(text)
    body = history.group(1) if history else ""
    parts = _TURN.split(body)
    # split() gives ["", "USER", "text", "ASSISTANT", "text", ...]
    return [parts[i + 1].strip() for i in range(1, len(parts) - 1, 2) if parts[i] == role]


def _title(question: str) -> str:
    words = " ".join(question.split()).rstrip(" ?.!").split()
    title = " ".join(words[:8])
    return title if len(words) <= 8 else f"{title}…"


def answer_task(key: str, text: str) -> str:
    """The task's answer as the JSON text the front-end parses; ValueError (with the message to show) for a task
    that is not answered here."""
    if key == "title":
        questions = _turns(text, "USER")
        return json.dumps({"title": _title(questions[0]) if questions else "News question"}, ensure_ascii=False)
    if key == "follow_ups":
        titles: list[str] = []
        for answer in _turns(text, "ASSISTANT"):
            for match in _CITED.finditer(answer):
                title = (match.group(1) or match.group(2) or "").strip()
                if title and title not in titles:
                    titles.append(title)
        follow_ups = [f"What else does the article “{t}” report?" for t in titles[:3]]
        return json.dumps({"follow_ups": follow_ups}, ensure_ascii=False)
    if key in ("tags", "queries"):
        return json.dumps({key: []})
    if key == "text":
        return json.dumps({"text": ""})
    raise ValueError(REFUSED.format(key=key))
