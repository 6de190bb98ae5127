"""Settings refuse combinations that cannot work, and the default needs no LLM, key or network."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings


def test_the_default_is_extractive_with_no_llm(tmp_path: Path) -> None:
    assert make_settings(tmp_path).llm == "none"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"llm": "openai", "llm_base_url": "http://127.0.0.1:8081/v1"}, "RAG_LLM_MODEL is required"),
        ({"llm": "openai", "llm_model": "gpt-4o-mini"}, "OPENAI_API_KEY"),
        ({"llm": "openai", "llm_model": "m", "llm_base_url": "127.0.0.1:8081"}, "http://"),
        ({"llm": "anthropic"}, "llm"),
        ({"llm_timeout": 0}, "llm_timeout"),
        ({"llm_temperature": 3}, "llm_temperature"),
    ],
)
def test_nonsense_llm_settings_are_refused(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(tmp_path, **overrides)


def test_a_local_server_needs_no_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, llm="openai", llm_model="gemma", llm_base_url="http://127.0.0.1:8081/v1")
    assert settings.openai_api_key is None


def test_short_api_keys_are_refused_with_a_way_to_make_a_good_one(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"at least 16 characters.*token_urlsafe"):
        make_settings(tmp_path, api_keys="a-long-enough-key-0001, change-me")
    assert make_settings(tmp_path, api_keys="a-long-enough-key-0001").keys == ("a-long-enough-key-0001",)


def test_the_embedder_defaults_to_minilm_on_whatever_device_onnxruntime_offers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert (settings.embedder, settings.embed_device) == ("minilm", "auto")
    assert make_settings(tmp_path, embedder="minilm-int8", embed_device="cuda").embed_device == "cuda"
    with pytest.raises(ValidationError, match="embed_device"):
        make_settings(tmp_path, embed_device="gpu")
