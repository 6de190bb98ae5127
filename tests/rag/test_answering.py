from __future__ import annotations

import pytest

from rag.answering import (
    NO_ANSWER,
    QuestionKind,
    SentenceFacts,
    asks_for_slot,
    compares_events,
    context,
    counted_nouns,
    fits_answer_type,
    fits_speaker,
    key_terms,
    places,
    speakers,
    speech_subject,
    speech_topic,
    undated,
)
from rag.chunking import split_sentences
from rag.models import Chunk, Filters
from rag.pipeline import Pipeline

# Questions from eval/questions/seeds.jsonl (written by hand from the seed text) that the default
# pipeline must answer with a citation whose passage holds the expected evidence sentence and
# whose answer states every required fact. The evaluation harness scores all of them.
ANSWERED = [
    "seeds-004",
    "seeds-005",
    "seeds-006",
    "seeds-007",
    "seeds-008",
    "seeds-009",  # who said what
    "seeds-016",
    "seeds-018",
    "seeds-020",
    "seeds-023",  # numbers
    "seeds-033",
    "seeds-034",  # places and dates
    "seeds-044",  # spans two articles
    "seeds-049",
    "seeds-050",
    "seeds-056",  # paraphrases
]
UNANSWERABLE = [
    "seeds-058",
    "seeds-059",
    "seeds-060",
    "seeds-061",
    "seeds-063",
    "seeds-064",
    "seeds-067",  # a dollar value: the sources give trade growth, no amount of money
    "seeds-069",  # a price per barrel: the sources give volumes only
    "seeds-062",  # "when ... visit to Washington": no passage names Washington with a time
    "seeds-065",  # Putin's response to the ICC warrant: no sentence reports him saying anything about it
    "seeds-066",  # how many ships and sailors: no sentence counts ships or sailors
    "seeds-068",  # which city hosts BRICS: the BRICS sentence names a month, not a place
]


@pytest.mark.parametrize("qid", ANSWERED)
def test_answer_cites_the_passage_holding_the_evidence(pipeline: Pipeline, seed_questions: dict, qid: str) -> None:
    question = seed_questions[qid]
    answer = pipeline.ask(question["question"])
    assert answer.answerable, answer.text
    evidence = [e["text"] for e in question["evidence"]]
    assert any(e in c.passage for c in answer.citations for e in evidence), answer.text
    for fact in question["facts"]:
        assert fact.lower() in answer.text.lower(), (fact, answer.text)


@pytest.mark.parametrize("qid", UNANSWERABLE)
def test_refuses_when_no_source_supports_the_answer(pipeline: Pipeline, seed_questions: dict, qid: str) -> None:
    answer = pipeline.ask(seed_questions[qid]["question"])
    assert not answer.answerable
    assert answer.text == NO_ANSWER and answer.citations == []


def test_putin_on_the_12_point_plan_is_quoted_with_citations(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Putin say about China's 12-point plan?")
    assert answer.answerable
    text = answer.text.lower()
    assert "basis" in text
    assert any(phrase in text for phrase in ("not yet ready", "did not appear ready", "no such readiness"))
    cited = " ".join(c.quote for c in answer.citations).lower()
    assert "basis" in cited and "ready" in cited
    assert all("putin" in c.passage.lower() for c in answer.citations)


def test_every_answer_sentence_carries_a_marker_and_every_marker_a_citation(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Xi say about sanctions?")
    assert answer.citations
    for c in answer.citations:
        assert f"{c.quote} [{c.n}]" in answer.text
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_citation_offsets_point_into_the_article_text(pipeline: Pipeline) -> None:
    answer = pipeline.ask("How much gas will the Power of Siberia 2 pipeline deliver?")
    assert answer.citations
    for c in answer.citations:
        article = pipeline.document(c.article_id)
        assert article.text is not None
        assert article.text[c.start : c.end] == c.passage
        assert article.text[c.quote_start : c.quote_end] == c.quote
        assert c.start <= c.quote_start < c.quote_end <= c.end


def test_a_filter_that_excludes_everything_gives_no_answer(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Putin say about gas?", filters=Filters(sources=("nowhere.txt",)))
    assert not answer.answerable and answer.citations == []


def test_key_terms_are_the_names_and_numbers_a_question_hinges_on() -> None:
    assert key_terms("What did Putin say about the 2008 Beijing Olympics?") == {"putin", "2008", "beij", "olymp"}
    assert key_terms("Which anniversary did the China-Russia concert mark?") == {"china", "russia"}


def test_quantity_and_money_questions_need_a_sentence_that_states_one() -> None:
    assert fits_answer_type("How many delegations were invited?", "Some 160 delegations were invited.")
    assert fits_answer_type("How long did Putin speak?", "He spoke for about eight minutes.")
    assert not fits_answer_type("How many ships took part in the drills?", "Russia and China held naval drills.")
    assert not fits_answer_type("What price per barrel did China pay?", "China bought 2 million barrels a day.")
    assert fits_answer_type("What price per barrel did China pay?", "China paid $60 a barrel.")
    assert fits_answer_type("What did Putin say about the plan?", "Putin praised the plan.")


def test_how_many_questions_need_a_count_of_what_they_ask_about() -> None:
    assert counted_nouns("How many ships and sailors took part in the drills?") == {"ship", "sailor"}
    assert counted_nouns("How many times had Putin met Xi?") == set()  # stated as "twice", "on 40 occasions"
    assert not fits_answer_type("How many ships took part?", "13.8 billion cubic metres of gas were shipped.")
    assert fits_answer_type("How many ships took part?", "Ten ships and 2,000 sailors took part.")
    assert fits_answer_type("How many times had they met?", "They met on 40 occasions.")


def test_how_long_when_and_where_questions_need_a_duration_a_time_and_a_place() -> None:
    assert fits_answer_type("How long did Putin speak?", "Speaking for about eight minutes, Putin said so.")
    assert not fits_answer_type("How long did Putin speak?", "Putin and Xi met in person twice in 2022.")
    assert fits_answer_type("When did China issue its plan?", "China issued the plan in February 2023.")
    assert fits_answer_type("When is the visit?", "He will visit Moscow next year.")
    assert not fits_answer_type("When did China issue its plan?", "The plan lacked details on how to end the war.")
    assert fits_answer_type("Where did they meet?", "They met in Samarkand, Uzbekistan.")
    assert not fits_answer_type("Where did they meet in Beijing?", "They met in Beijing.")  # names no other place
    assert not fits_answer_type("In which city is the summit?", "Russia hosts the summit in October.")
    assert not fits_answer_type("Which city?", "Putin spoke, according to the Kremlin statement.")
    assert places("They met in Beijing’s Great Hall of the People on Thursday.") >= {"beij", "great", "hall", "peopl"}
    # "which head of government" asks for a person's name, not the role or the people the question names
    person = "Which Asian head of government visited Kyiv while Xi was with Putin?"
    assert not fits_answer_type(person, "The visit to Kyiv by the Japanese prime minister surprised Xi.")
    assert not fits_answer_type(person, "Chinese President Xi Jinping met Russian President Vladimir Putin.")
    assert fits_answer_type(person, "Zelenskyy greeted Japan’s Fumio Kishida in Kyiv.")
    assert fits_answer_type(person, "He was greeted by Prime Minister Kishida.")
    assert not QuestionKind.of("Which state’s governor commuted the sentences?").person  # asks for a state
    # a question about what is to come is not answered by what already happened
    future = "What figures for future Russian gas deliveries came out of the visit?"
    assert not fits_answer_type(future, "13.8 billion cubic metres of gas were shipped in 2022.")
    assert not fits_answer_type(
        future, "Putin said Russia had completed agreements on a planned pipeline."
    )  # no figure
    assert fits_answer_type(future, "The pipeline would deliver 50 billion cubic metres of gas a year.")
    assert not QuestionKind.of("Which country banned tobacco sales for future generations?").future
    # "which building" wants a building's name, not the city it stands in
    building = "In which building in Beijing did they meet?"
    assert fits_answer_type(building, "They met in Beijing’s Great Hall of the People on Thursday.")
    assert not fits_answer_type(building, "Putin expected Xi to make a state visit to Moscow in 2023.")
    assert not fits_answer_type(building, "They met in Beijing.")
    assert fits_answer_type("Which venue hosted the talks?", "The talks were held at the Kremlin.")


def test_slot_questions_need_their_names_but_not_their_dates() -> None:
    assert asks_for_slot("When is Xi's next visit to Washington?")
    assert asks_for_slot("In which Russian city will the 2024 BRICS summit be held?")
    assert not asks_for_slot("What did Putin say about the plan?")
    assert undated({"bric", "2024", "decemb", "russia"}) == {"bric", "russia"}


def test_what_did_x_say_needs_reported_speech_by_x_about_the_topic() -> None:
    question = "What did Xi say about China's 12-point plan?"
    assert speech_subject(question) == {"xi"}
    assert "plan" in speech_topic(question) and "xi" not in speech_topic(question)
    assert speech_topic("How did Putin respond to the ICC arrest warrant issued against him?") >= {"icc", "warrant"}
    assert fits_speaker(question, "Chinese leader Xi said China would continue to push for “peace and dialogue.”")
    assert fits_speaker(question, "“We are always for peace and dialogue,” he added.")  # names no one else
    assert not fits_speaker(question, "Putin commended the plan and four principles mentioned by Xi in April.")
    assert not fits_speaker(question, "The plan lacked details on how to end the war.")  # reports no speech
    assert fits_speaker("What did Zelenskyy say?", "Zelenskyy on Tuesday said Kyiv was still waiting.")
    assert fits_speaker("How did Ramani characterise it?", "Ramani told Al Jazeera that it was not an alliance.")
    assert fits_speaker("What did Putin say?", "Xi called it a plan.") is False
    assert fits_speaker("What was agreed?", "The plan lacked details.")  # not a speech question


def test_xi_on_the_12_point_plan_quotes_xi_not_putin(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Xi say about China's 12-point plan?")
    assert answer.answerable
    assert any("Xi said" in c.quote for c in answer.citations), answer.text
    assert not any("Putin said" in c.quote or "Putin commended" in c.quote for c in answer.citations), answer.text


def test_what_has_x_said_is_a_speech_question_too() -> None:
    # Demonyms read as their country.
    assert speech_subject("What has the Swiss government said about the summit?") == {"switzerland"}
    assert "summit" in speech_topic("What has the Swiss government said about the summit?")
    assert speech_subject("How has Putin described the partnership?") == {"putin"}
    assert not speech_subject("What has China proposed?")


def test_speakers_are_the_names_before_a_reporting_verb_or_after_said() -> None:
    assert speakers("“It is stable as mountains,” Mr. Putin said, noting the accord.") == {"putin"}
    assert speakers("Xi told Putin the partnership was strong.") == {"xi"}
    assert speakers("Zelenskyy on Tuesday said Kyiv was waiting.") == set()  # the name is not next to the verb
    assert speakers("“No,” said Xi.") == {"xi"}
    # An institution speaks for the name before it.
    assert speakers("The Swiss government noted that “Russia has no interest.”") == speech_subject(
        "What has the Swiss government said?"
    )
    assert speakers("The Chinese side said it was ready.") == speakers("The Chinese foreign ministry said so.") != set()


def test_comparison_questions_are_told_apart() -> None:
    assert compares_events("Has Russia's stance on Taiwan changed between the Samarkand meeting and the statement?")
    assert compares_events("How did the two statements differ?")
    assert not compares_events("When did China issue its 12-point peace proposal for Ukraine?")
    assert not compares_events("How many times did Putin and Xi meet in person in 2022?")


def test_further_sentences_come_from_the_best_sentences_article(pipeline: Pipeline) -> None:
    # The 12-point plan is dated in one article; another article's "unveiled last month" sentence about Putin's
    # view of the plan scores close behind but answers another question.
    answer = pipeline.ask("When did China issue its 12-point peace proposal for Ukraine?")
    assert answer.answerable and "February 2023" in answer.text
    assert len({c.article_id for c in answer.citations}) == 1, answer.text
    # "Twice in 2022" (a 2022 article) does not answer how often they had met by 2024.
    answer = pipeline.ask("How many times had Putin met Xi by the time of his 2024 state visit to China?")
    assert "40 occasions" in answer.text and "twice" not in answer.text, answer.text


def test_another_article_is_quoted_for_a_comparison_or_the_asked_speaker(pipeline: Pipeline) -> None:
    answer = pipeline.ask(
        "Has Russia's stance on Taiwan changed between the Samarkand meeting and the later Xi-Putin joint statement?"
    )
    assert len({c.article_id for c in answer.citations}) == 2, answer.text
    answer = pipeline.ask("How did Putin describe the Russia-China partnership at the Samarkand meeting?")
    assert "stable as mountains" in answer.text, answer.text


def test_once_the_asked_speaker_is_quoted_by_name_other_passages_need_their_name(pipeline: Pipeline) -> None:
    # The summit announcement ("aiming to develop a “common understanding …”") scores above the Swiss
    # government's own words but lies in another passage and names no speaker: narration, not what was said.
    answer = pipeline.ask("What has the Swiss government said about Russia and the Ukraine peace summit it is hosting?")
    assert "unthinkable" in answer.text and "common understanding" not in answer.text, answer.text
    assert len({c.chunk_id for c in answer.citations}) == 1, answer.text


def test_a_sentence_well_behind_the_best_is_left_out(pipeline: Pipeline) -> None:
    # Xi's "core interests" quote scores 0.117 behind his "leading role" one: another remark, not the role asked.
    answer = pipeline.ask(
        "What role did Xi say China wanted to play together with Russia, speaking at their Samarkand meeting?"
    )
    assert "leading role" in answer.text and "core interests" not in answer.text, answer.text


def test_sentence_facts_read_each_sentence_with_the_one_leaning_on_it(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    leaning = 0
    for stored in snapshot.chunks:
        chunk = stored.chunk
        facts = SentenceFacts.of_chunk(chunk)
        assert [f.said for f in facts] == [context(chunk, span) for span in chunk.sentences]
        leaning += sum(f.said != f.text for f in facts)
    assert leaning > 0  # "But he added that ..." after the Putin quote, at least


def _chunk(text: str) -> Chunk:
    return Chunk("c", "a", "h", 0, text, 0, len(text), tuple(split_sentences(text)), "t", "s")


def test_a_closing_mark_nothing_opened_is_not_a_quotation() -> None:
    stray = _chunk('Putin and Xi met twice in 2022.\nIn September, they met in Samarkand, Uzbekistan."')
    assert [f.reports for f in SentenceFacts.of_chunk(stray)] == [False, False]
    closing = _chunk('“We will meet in the spring. We expect you in Moscow." Both leaders met in person.')
    assert [f.reports for f in SentenceFacts.of_chunk(closing)] == [True, True, False]
    assert SentenceFacts.of_chunk(_chunk("Ties entered a “new era” of trust."))[0].reports
