"""Unit tests of the collector's parts that need no model: reading prompts, templates, spans."""

import json
import tempfile
import unittest
from pathlib import Path

from hawthorne_collect.collect import CollectError, chat_ids, prepare, read_prompts, rfind


class WordTokenizer:
    """Splits on spaces; ids are word lengths (enough to test spans and answers)."""

    chat_template = None
    calls = []

    def __call__(self, text, add_special_tokens=True):
        ids = [len(w) for w in text.split()]
        return {"input_ids": ([99] if add_special_tokens else []) + ids}


class SystemRefusingTokenizer(WordTokenizer):
    chat_template = "refuses system"

    def apply_chat_template(self, messages, **_):
        if any(m["role"] == "system" for m in messages):
            raise ValueError("System role not supported")
        return [7] + self(messages[0]["content"], add_special_tokens=False)["input_ids"] + [8]


def write(lines, header=None):
    d = tempfile.mkdtemp()
    p = Path(d) / "prompts.jsonl"
    rows = ([header] if header is not None else []) + lines
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


HEADER = {"format": "hawthorne-prompts", "format_version": 1, "spec_hash": "ab", "spec_model": "m", "readout": "mean_task", "n_prompts": 1, "texts": ["Yes", "No"]}
LINE = {"index": 0, "framing": "f", "condition": "observed", "task": "t", "family": "x", "split": "train", "test_fold": 0,
        "held_out_framing": False, "system": "sys here", "user": "aa bbb cccc", "task_text": "bbb cccc", "aligned": "No", "misaligned": "Yes"}


class Tests(unittest.TestCase):
    def test_header_is_required(self):
        with self.assertRaisesRegex(CollectError, "header line"):
            read_prompts(write([LINE]))

    def test_truncated_file_is_named(self):
        with self.assertRaisesRegex(CollectError, "announces 2 prompts, the file has 1"):
            read_prompts(write([LINE], {**HEADER, "n_prompts": 2}))

    def test_out_of_order(self):
        with self.assertRaisesRegex(CollectError, "out of order"):
            read_prompts(write([{**LINE, "index": 3}], HEADER))

    def test_rfind_finds_the_last_occurrence(self):
        self.assertEqual(rfind([1, 2, 3, 2, 3], [2, 3]), 3)
        self.assertIsNone(rfind([1], [2, 3]))
        self.assertIsNone(rfind([1, 2], []))

    def test_plain_format_and_task_span(self):
        p = read_prompts(write([LINE], HEADER))
        prep = prepare(p, WordTokenizer())
        # "sys here\n\nUser: aa bbb cccc\nAssistant:" → BOS, 3, 4, 5, 2, 3, 4, 10
        self.assertEqual(prep.template, "plain")
        self.assertEqual(prep.ids[0], [99, 3, 4, 5, 2, 3, 4, 10])
        self.assertEqual(prep.spans[0], (5, 7))  # "bbb cccc" → [3, 4]
        self.assertEqual(prep.answers[0], (2, 3))  # "No", "Yes"

    def test_a_prompt_over_the_limit_is_refused_before_any_pass(self):
        p = read_prompts(write([LINE], HEADER))
        with self.assertRaisesRegex(CollectError, "has 8 tokens, over the limit of 5"):
            prepare(p, WordTokenizer(), max_tokens=5)

    def test_same_first_answer_token_is_refused(self):
        p = read_prompts(write([{**LINE, "misaligned": "Ok"}], HEADER))
        with self.assertRaisesRegex(CollectError, "different tokens"):
            prepare(p, WordTokenizer())

    def test_template_without_system_turn_gets_it_in_the_user_turn(self):
        ids, template = chat_ids(SystemRefusingTokenizer(), "sys here", "aa")
        self.assertEqual(template, "model")
        self.assertEqual(ids, [7, 3, 4, 2, 8])


if __name__ == "__main__":
    unittest.main()
