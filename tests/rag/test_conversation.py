"""Follow-up questions made standalone: the offline rule, and the LLM rewrite with its fallback."""

from __future__ import annotations

import pytest

from rag.conversation import entities, rewrite_one, standalone_question, topic
from rag.generation import REWRITE_PROMPT
from rag.models import Turn
from rag.pipeline import Pipeline
from tests.fake_llm import FakeLLM, Reply

PUTIN = "What did Putin say about China's 12-point plan?"


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("and what did Xi say about it?", "What did Xi say about China's 12-point plan?"),
        ("What about Xi Jinping?", "What did Xi Jinping say about China's 12-point plan?"),
        ("And Xi?", "What did Xi say about China's 12-point plan?"),
        ("Is it realistic?", "Is China's 12-point plan realistic?"),
        ("When did he say that?", "When did Putin say China's 12-point plan?"),
        ("What did his government say?", "What did Putin's government say?"),
        ("And when?", "When (Putin, China's 12-point plan)?"),
    ],
)
def test_follow_ups_carry_the_previous_subject_and_topic(follow_up: str, standalone: str) -> None:
    assert rewrite_one(follow_up, PUTIN) == standalone


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("and who scored in the final?", "Who scored in the final (the 2022 World Cup)?"),
        ("and what did Putin say about it?", "What did Putin say about the 2022 World Cup?"),
        ("And when?", "When (the 2022 World Cup)?"),
    ],
)
def test_follow_ups_carry_noun_phrases_not_verb_fragments(follow_up: str, standalone: str) -> None:
    # The previous question has no "about ..." phrase: its topic is its last noun phrase, never "won 2022 World Cup".
    assert topic("Who won the 2022 World Cup?") == "the 2022 World Cup"
    assert rewrite_one(follow_up, "Who won the 2022 World Cup?") == standalone


def test_a_new_standalone_question_is_left_alone() -> None:
    question = "How many people died in the earthquake in Afghanistan?"
    assert rewrite_one(question, PUTIN) == question
    assert standalone_question(question, []) == question


def test_a_chain_of_follow_ups_is_resolved_turn_by_turn() -> None:
    history = [
        Turn("user", "How many people died in the earthquake in Afghanistan?"),
        Turn("assistant", "At least 1,000 people died. [1]"),
        Turn("user", "What did the Taliban say about it?"),
        Turn("assistant", "..."),
    ]
    assert standalone_question("and the UN?", history) == "What did the UN say about the earthquake in Afghanistan?"


def test_entities_and_topic_skip_question_words() -> None:
    assert entities(PUTIN) == ["Putin", "China's", "12-point"]
    assert topic(PUTIN) == "China's 12-point plan"


def test_pipeline_rewrites_follow_ups_offline_by_the_rule(pipeline: Pipeline) -> None:
    history = [Turn("user", PUTIN), Turn("assistant", "Putin said it could be a basis. [1]")]
    assert (
        pipeline.standalone("and what did Xi say about it?", history) == "What did Xi say about China's 12-point plan?"
    )
    assert pipeline.standalone("  What   is it? ", []) == "What is it?"


def test_the_llm_rewrites_follow_ups_when_configured(llm_pipeline: Pipeline, fake_llm: FakeLLM) -> None:
    fake_llm.reply = Reply(text="What did Xi Jinping say about China's 12-point peace plan for Ukraine?")
    history = [Turn("user", PUTIN), Turn("assistant", "Putin said it could be a basis. [1]")]
    rewritten = llm_pipeline.standalone("and what did Xi say about it?", history)
    assert rewritten == "What did Xi Jinping say about China's 12-point peace plan for Ukraine?"
    sent = fake_llm.requests[-1]["messages"]
    assert sent[0]["content"] == REWRITE_PROMPT and PUTIN in sent[1]["content"]


@pytest.mark.parametrize("reply", [Reply(status=500), Reply(text="line one\nline two")])
def test_a_failed_llm_rewrite_falls_back_to_the_rule(llm_pipeline: Pipeline, fake_llm: FakeLLM, reply: Reply) -> None:
    fake_llm.reply = reply
    history = [Turn("user", PUTIN)]
    assert llm_pipeline.standalone("and what did Xi say about it?", history) == (
        "What did Xi say about China's 12-point plan?"
    )
