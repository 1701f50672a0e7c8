"""Prompt markers: chain-of-thought elicitation, rubric grading, tool-use templates.

Markers are bit flags computed once per request at ingest (vectorised regular expressions) and
stored in ``requests.markers``; a run only aggregates them.

>>> prompt_markers(pd.Series(["Think step by step and show your reasoning.", "hi", None])).tolist()
[1, 0, 0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["COT", "MARKER_NAMES", "RUBRIC", "TOOL", "prompt_markers"]

COT = 1
"""The prompt asks the model to expose its reasoning (chain-of-thought elicitation)."""
RUBRIC = 2
"""The prompt uses the model as a grader / reward model (rubric scoring, pairwise preference)."""
TOOL = 4
"""The prompt carries a tool-use / function-calling / agentic template."""

MARKER_NAMES = {COT: "chain-of-thought elicitation", RUBRIC: "rubric grading", TOOL: "tool-use"}

_PATTERNS = {
    COT: (
        r"step[- ]by[- ]step|chain[- ]of[- ]thought|show (?:all )?(?:your|the) (?:reasoning|work|"
        r"thinking)|explain your reasoning|reason (?:through|carefully)|think (?:carefully|aloud|"
        r"out loud|through)|<think(?:ing)?>|walk me through your (?:reasoning|thought)|"
        r"before (?:answering|you answer)[^.]{0,40}\b(?:think|reason)|full reasoning|"
        r"intermediate steps|reasoning trace"
    ),
    RUBRIC: (
        r"rubric|on a scale (?:of|from) \d|score (?:it |this |the \w+ )?(?:from|between|out of) \d|"
        r"rate (?:the|this|each|both) (?:following )?(?:response|answer|completion|output)s?|"
        r"which (?:response|answer|completion) is better|grade (?:the|this|each) "
        r"(?:response|answer|essay|solution|completion)|(?:response|answer) [ab12] (?:or|vs\.?) "
        r"(?:response|answer) [ab12]|evaluate the (?:quality|correctness|helpfulness) of|"
        r"assign a (?:score|grade)|reward model|preference (?:label|judgement|judgment)"
    ),
    TOOL: (
        r"\"?function_call\"?|\btool_calls?\b|<tool_call>|available tools|"
        r"call the (?:tool|function)|"
        r"json schema|\"parameters\"[ \t\n\r\f\v]*:|"
        r"you have access to the following (?:tools|functions)|"
        r"function calling|use the (?:\w+ )?tool"
    ),
}


def prompt_markers(prompts: pd.Series) -> np.ndarray:
    """Bit flags (int16) of :data:`COT`, :data:`RUBRIC` and :data:`TOOL` for each prompt.

    The patterns run in Arrow's RE2, where ``\\b``, ``\\w`` and ``\\d`` are ASCII classes
    (pandas would fall back to Python's ``re``, row by row, for any text with a non-ASCII
    character).

    >>> prompt_markers(pd.Series(["Réfléchis step by step", "Rate this response 1-10"])).tolist()
    [1, 2]
    """
    text = pc.utf8_lower(pa.array(prompts, type=pa.large_string(), from_pandas=True))
    flags = np.zeros(len(prompts), dtype=np.int16)
    for bit, pattern in _PATTERNS.items():
        hit = pc.fill_null(pc.match_substring_regex(text, pattern), False)
        flags[hit.to_numpy(zero_copy_only=False)] |= bit
    return flags
