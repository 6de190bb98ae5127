"""Request and response models of the OpenAI-compatible chat API (/v1/chat/completions, /v1/models).

Requests tolerate the fields OpenAI clients commonly send (temperature, max_tokens, user,
stream_options, ...): declared ones are type-checked and ignored, undeclared ones are dropped, so
Open WebUI or LibreChat work unchanged while a mistyped value still gets a 400. A conversation may have
any number of messages of any length within the body limit (RAG_MAX_BODY_BYTES): clients send the whole
chat every time, and only its last turns (RAG_CHAT_HISTORY_TURNS) are read to make a follow-up standalone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.chat_tasks import task_of
from api.schemas import MAX_QUESTION_CHARS, MAX_TURN_CHARS, CitationOut, Day, ResolvedDates, usable_question
from rag.models import Turn

MODEL_ID = "newsrag"


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


_TEXT_PARTS = ("text", "input_text")  # Chat Completions' name, and the Responses API's


class ContentPart(Lenient):
    """A content part. Only text parts carry anything we can use; others (an attached image) are ignored,
    as chat front-ends send them whatever the model."""

    type: str = Field(..., max_length=50)
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> ContentPart:
        if self.type in _TEXT_PARTS and self.text is None:
            raise ValueError("a text part needs its text")
        return self


class ChatMessage(Lenient):
    """One turn. Tool and function turns (a front-end's own tool calls) are accepted and, like system
    turns, do not steer retrieval."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=200)

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type in _TEXT_PARTS and part.text)
        return self.content or ""


class StreamOptions(Lenient):
    include_usage: bool | None = None


class ChatRequest(Lenient):
    """A chat completion request: the last user message is the question, earlier turns its context."""

    model: str = Field(
        MODEL_ID,
        max_length=200,
        description=f"'{MODEL_ID}', or one of its aliases (RAG_CHAT_MODEL_ALIASES); another name is a 404.",
    )
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool | None = Field(False, description="null is false, as in OpenAI's API.")
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")
    presence_penalty: float | None = Field(None, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, allow_inf_nan=False)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = Field(None, max_length=500)
    metadata: dict[str, Any] | None = None
    as_of: Day | None = Field(
        None, description="newsrag: the day the question is asked (default: today); 'this week' is read from it."
    )

    @model_validator(mode="after")
    def _has_a_question(self) -> ChatRequest:
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if not users:
            raise ValueError("messages: must contain a user message")
        last = users[-1]
        if isinstance(self.messages[last].content, list) and not self.messages[last].text:
            raise ValueError(f"messages.{last}.content: the last user message has no text part (type 'text')")
        question = usable_question(self.messages[last].text, f"messages.{last}.content: the last user message")
        if len(question) > MAX_QUESTION_CHARS and self.task is None:
            raise ValueError(f"messages.{last}.content: a question must be at most {MAX_QUESTION_CHARS} characters")
        return self

    @property
    def question_index(self) -> int:
        return max(i for i, m in enumerate(self.messages) if m.role == "user")

    @property
    def question(self) -> str:
        return self.messages[self.question_index].text

    @property
    def task(self) -> str | None:
        """The JSON key a front-end's housekeeping prompt asks for (`api.chat_tasks`); None for a question."""
        users = [m for m in self.messages if m.role == "user"]
        return task_of(users[-1].text) if users else None

    def history(self, turns: int) -> list[Turn]:
        """The last `turns` user and assistant turns before the question (system prompts do not steer
        retrieval), each cut to MAX_TURN_CHARS: what a follow-up is made standalone with."""
        before = self.messages[: self.question_index]
        kept = [Turn(m.role, m.text[:MAX_TURN_CHARS]) for m in before if m.role in ("user", "assistant")]
        return [t for t in kept if t.content.strip()][-turns:] if turns else []


class UrlCitation(BaseModel):
    url: str = Field(description="The article's own URL, or this service's GET /documents/{id} link.")
    title: str
    start_index: int = Field(description="Where the cited sentence (with its [n]) starts in `content`.")
    end_index: int = Field(description="Where it ends (exclusive).")


class Annotation(BaseModel):
    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer with [n] markers, then its sources as a Markdown list.")
    annotations: list[Annotation] = Field(default_factory=list, description="OpenAI's source annotations.")
    citations: list[CitationOut] = Field(description="What each [n] marker points at (not part of OpenAI's API).")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    rewritten_question: str = Field(description="The standalone question that was retrieved and answered.")
    resolved_dates: ResolvedDates | None = Field(None, description="The range the question's time phrase set.")
    answerable: bool
    mode: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "newsrag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
