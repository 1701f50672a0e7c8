"""Prompt kinds and their rendering: one grammar for legit users, look-alikes and farms.

A prompt is ``[preamble] body [chain-of-thought request] [output format]``. Every request carries
a *skeleton key*: free text gets a fresh random key per request (every phrasing choice random),
a template reuses one key (fixed phrasing, slots still vary). Farms differ from legit traffic
by repeating a few keys across many accounts, not by words of their own.

>>> rng = np.random.default_rng(0)
>>> keys = np.full(3, 42, dtype=np.uint64)
>>> out = render(np.full(3, KIND["reasoning"]), keys, np.zeros(3, bool), np.ones(3, bool),
...              np.zeros(3, bool), np.zeros(3, bool), rng)
>>> len(out)
3
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentra_graph.synth.grammar import Grammar, mix_keys
from sentra_graph.synth.vocab import FILLERS

__all__ = ["KIND", "KINDS", "LEGIT_KIND_WEIGHTS", "render", "template_flags"]

KINDS = (
    "coding",
    "writing",
    "qa",
    "translation",
    "summarise",
    "chat",
    "reasoning",
    "tool",
    "eval",
    "exam",
    "ide",
    "product",
)
"""Prompt kinds. ``eval`` grades responses (rubric scores, pairwise preference: what a reward
model does), ``exam`` asks test questions; ``ide`` and ``product`` are the templates of an IDE
plugin and of an enterprise application (legit look-alikes)."""
KIND = {name: i for i, name in enumerate(KINDS)}

LEGIT_KIND_WEIGHTS = np.array(
    [0.26, 0.15, 0.19, 0.06, 0.08, 0.12, 0.07, 0.05, 0.01, 0.02, 0.0, 0.0]
)
"""Average mix of kinds in organic traffic (each account draws its own mix around it)."""

_BODIES: dict[str, list[str]] = {
    "coding": [
        "{{Write|Can you write|Please write|I need|Help me write|Could you write me}} a "
        "<<lang>> function that <<code_task>>{{.|?| please.|}}",
        "{{Why does|What is wrong with|Can you fix|Explain}} this <<lang>> code{{?|:|}}"
        "\n\n<<code>>",
        "I get `<<error_msg>>` {{when I run|from}} this:\n<<code>>\n"
        "{{How do I fix it?|What am I doing wrong?|any idea?}}",
        "{{Refactor|Optimise|Add type hints to|Write unit tests for|Add comments to}} "
        "{{this|the following}} code{{:|.}}\n<<code>>",
        "{{How do I|What's the best way to|Is there a way to}} <<code_howto>> in <<lang>>?",
        "{{Translate|Port|Convert}} this code to <<lang>>:\n<<code>>",
        "{{Implement|Write}} a <<lang>> {{class|module|script}} that <<code_task>>. "
        "{{Include tests.|Keep it simple.|Explain the time complexity.|}}",
    ],
    "writing": [
        "{{Write|Draft|Compose|Help me write}} a {{short |||##100-800##-word }}<<tone>> "
        "{{email|cover letter|blog post|LinkedIn post|essay|poem|product description|speech|"
        "story}} about <<topic>>{{.| for <<audience>>.| for <<company>>.}}",
        "{{Rewrite|Proofread|Improve|Shorten}} {{this|the following}} {{paragraph|text|email}}"
        "{{:|.| so it sounds <<tone>>:}}\n\n<<passage>>",
        "Give me ##3-20## {{ideas|titles|slogans|names}} for {{a blog about|a startup working on|"
        "a podcast on|a YouTube channel about}} <<topic>>.",
        "Write a {{haiku|limerick|sonnet|short poem}} about <<topic>>{{| in the style of "
        "Shakespeare| for <<name>>}}.",
        "{{Write|Draft}} a {{reply|response}} to <<name>> {{declining|accepting|postponing}} "
        "the {{meeting|offer|invitation}}{{, keep it <<tone>>|}}.",
    ],
    "qa": [
        "{{What is|Explain|Tell me about|Can you explain|Describe}} <<topic>>{{?|.| in simple "
        "terms.| to <<audience>>.}}",
        "<<question>>",
        "{{How does|Why does}} <<topic>> {{work|matter|change over time|affect the economy}}?",
        "Explain <<cs_concept>> {{with an example|like I'm five|in two paragraphs|"
        "to <<audience>>}}.",
        "What are the {{main|key|biggest}} {{differences|similarities}} between <<topic>> and "
        "<<topic>>?",
        "{{Plan|Suggest}} a ##2-14##-day trip to <<city>>{{| on a budget| with kids}}.",
        "{{Give me a recipe|What can I cook}} with <<item>>, {{rice|pasta|beans|potatoes}} and "
        "{{garlic|onions|spinach|cheese}}?",
        "{{Is|Was}} <<topic>> {{a good idea|worth it|overrated}}? {{Be honest.|Why?|}}",
    ],
    "translation": [
        "{{Translate|Please translate|Can you translate}} {{this|the following}} {{into|to}} "
        "<<human_lang>>{{:|.}}\n<<short_text>>",
        'How do you say "<<short_text>>" in <<human_lang>>?',
        "<<short_text>>\n\n{{translate to|in}} <<human_lang>>{{| please}}",
        "{{Translate|Render}} this <<doc_type>> into <<human_lang>>{{, keeping the tone|}}:\n"
        "<<passage>>",
    ],
    "summarise": [
        "{{Summarize|Summarise|Give me a summary of|TL;DR}} {{this|the following}} <<doc_type>>"
        "{{:|.| in ##2-5## bullet points:| in one sentence:}}\n\n<<passage>>",
        "<<passage>>\n\n{{Summarize the above.|tl;dr?|What are the key points?|"
        "Summarise in ##20-80## words.}}",
        "{{Extract the action items from|List the main claims in}} this <<doc_type>>:\n<<passage>>",
    ],
    "chat": [
        "{{hi|hello|hey there}}{{|!| :)}}",
        "{{thanks|thank you|thx}}{{!|, that worked|, perfect}}",
        "can you make it {{shorter|longer|more formal|simpler|funnier}}{{|?}}",
        "what about in <<lang>>?",
        "{{ok|okay|hmm}} {{and|but}} what if <<name>> had ##2-9## more <<item>>?",
        "that didn't work, I still get <<error_msg>>",
        "{{tell me|do you know}} a joke about <<topic>>",
        "what do you think about <<topic>>?",
        "{{continue|go on|keep going}}",
        "{{explain that again|say that again}} {{but simpler|in fewer words|with an example}}",
    ],
    "reasoning": [
        "<<word_problem>>",
        "<<logic_puzzle>>",
        "{{Solve|Answer|Work out}}{{| the following| this}}{{:|.}} <<word_problem>>",
        "{{Problem|Question|Task}} ##1-50##: <<word_problem>>",
        "{{Prove|Show}} that the sum of ##2-9## consecutive integers is divisible by ##2-9## "
        "{{when|if}} the count is odd.",
        "{{Find|Compute|Determine}} the {{answer|result|value}}: <<word_problem>>",
        "{{Consider|Here is}} a {{puzzle|question|problem}}. <<logic_puzzle>>",
    ],
    "tool": [
        "You have access to the following tools:\n<<tool_schema>>\n<<tool_schema>>\n\n"
        "{{User request|Task}}: <<tool_request>>",
        "{{Use the|Call the}} <<ident>> tool to {{find|update|delete|list}} <<data_obj>> for "
        "<<person>>.",
        "Available tools: <<ident>>, <<ident>>, <<ident>>.\n{{Respond|Reply}} with a JSON tool "
        "call for: <<tool_request>>",
    ],
    "eval": [
        "{{Rate|Score|Grade}} the following {{response|answer|completion}} {{on a scale of 1 to "
        "10|from 1 to 10|on a scale from 1 to 5}}{{ using the rubric below| according to the "
        "rubric| for helpfulness and accuracy}}.\n{{Rubric|Criteria}}: <<rubric_criteria>>\n\n"
        "{{Question|Prompt|Instruction}}: <<question>>\n{{Response|Answer}}: <<answer_text>>\n\n"
        "{{Give the score and a one-line justification.|Output only the score.|"
        "Return JSON with keys score and reason.}}",
        "{{Which response is better|Which answer is better}}, A or B?\n{{Question|Prompt}}: "
        "<<question>>\nResponse A: <<answer_text>>\nResponse B: <<answer_text>>\n"
        "{{Answer with A or B.|Explain briefly, then give your verdict.}}",
    ],
    "exam": [
        "<<mcq>>\n{{Answer with the letter of the correct option.|Choose one option.|"
        "Reply with A, B, C or D.}}",
        "{{Grade this essay|Rate my essay|Give feedback on my essay}}{{| on a scale of 1 to 10}}:"
        "\n<<passage>>",
    ],
    "ide": [
        "You are CodeMate, an AI programming assistant inside the user's editor. Follow the "
        "user's requirements carefully. Keep answers short and impersonal.\n"
        "Current file: <<filename>>\n```\n<<code>>\n```\nUser: <<ide_request>>",
    ],
    "product": [
        "Classify the following customer support ticket into one of: billing, technical, "
        'account, other. Respond with JSON {"category": ..., "confidence": ...}.\n'
        "Ticket: <<ticket>>",
        "You write product descriptions for an online store. Write ##40-120## words for: "
        "<<item>> by <<company>>, colour {{red|blue|black|green}}, price $##5-300##. "
        "Tone: <<tone>>.",
        "Summarise this sales call transcript for the CRM in 3 bullet points, then list next "
        "steps.\nTranscript: <<passage>>",
        "Extract the fields name, city and order number from this message and return JSON.\n"
        "Message: <<ticket>> Regards, <<name>> from <<city>>",
    ],
}

_PARTS: dict[str, list[str]] = {
    "preamble": [
        "You are a helpful assistant.",
        "You are {{an expert|a world-class|a careful|a patient}} {{mathematician|software "
        "engineer|tutor|data scientist|physics teacher|competitive programmer|editor}}.",
        "{{System|Instructions}}: {{answer concisely|be precise|do not make things up}}.",
        "Act as {{a senior <<lang>> developer|a math olympiad coach|a technical interviewer}}.",
    ],
    "cot": [
        "Think step by step.",
        "Let's think step by step.",
        "Show your reasoning before giving the final answer.",
        "Explain your reasoning in detail.",
        "Walk me through your reasoning.",
        "Reason carefully and show all intermediate steps.",
        "Think through the problem carefully before answering.",
        "Show your work.",
        "Put your full reasoning inside <think> tags, then answer.",
        "Give a detailed chain of thought, then the answer.",
        "Be thorough and justify each step.",
        "Before you answer, list what you know and what you need to find.",
    ],
    "format": [
        "Give the final answer on the last line as 'Answer: X'.",
        "End with 'Final answer:' followed by the result.",
        "Respond in JSON with keys reasoning and answer.",
        "Keep it under ##50-300## words.",
        "Use markdown.",
        "Format the answer as a numbered list.",
        "Answer in <<human_lang>>.",
        "Box the final answer.",
    ],
    "code_howto": [
        "read a file line by line",
        "make an HTTP request with retries",
        "parse JSON",
        "run tasks in parallel",
        "connect to PostgreSQL",
        "sort a dictionary by value",
        "handle timezones",
        "read environment variables",
        "write a CLI with subcommands",
        "mock a database in tests",
        "stream a large file",
        "debounce a function",
    ],
    "rubric_criteria": [
        "{{accuracy|correctness}} (##1-5## points), {{clarity|helpfulness}} (##1-5## points), "
        "{{completeness|conciseness}} (##1-5## points)",
        "1 = {{wrong|unhelpful}}, 5 = {{partially correct|somewhat helpful}}, 10 = {{fully "
        "correct and well explained|excellent}}",
        "score {{factuality|reasoning}} and {{style|tone}} separately, then average",
    ],
    "tool_request": [
        "book a table for ##2-8## in <<city>> on {{Friday|Saturday|the 12th}}",
        "find the weather in <<city>> {{tomorrow|this weekend}}",
        "send <<name>> the latest {{report|invoice|slides}}",
        "look up order ###1000-99999## and tell me its status",
        "create a calendar event with <<name>> at ##8-18##:00",
    ],
    "ide_request": [
        "{{explain|refactor|add tests for|fix the bug in|document}} {{this function|the selected "
        "code|this file}}",
        "why do I get <<error_msg>> here?",
        "{{write|generate}} a function that <<code_task>>",
        "convert this to <<lang>>",
    ],
}

GRAMMAR = Grammar({**FILLERS, **_BODIES, **_PARTS})

_SEPARATORS = pa.array([" ", "\n", "\n\n"])
_PREFIXES = pa.array(["hey, ", "ok so ", "quick question: ", "hi! ", "pls help: ", "so "])
_SUFFIXES = pa.array([" thanks", " pls", " :)", " thx!", " asap", " ty"])
_SALT_SEP, _SALT_PRE, _SALT_COT, _SALT_FMT = 101, 102, 103, 104


def template_flags(keys: np.ndarray, rate: float, part: str) -> np.ndarray:
    """Whether templates (keys) include an optional ``part`` ("preamble", "cot", "format").

    Deterministic per key: every request of one template agrees.

    >>> k = np.array([5, 5, 9], dtype=np.uint64)
    >>> f = template_flags(k, 0.5, "cot"); bool(f[0] == f[1])
    True
    """
    salt = {"preamble": _SALT_PRE, "cot": _SALT_COT, "format": _SALT_FMT}[part]
    u = (mix_keys(keys, salt) >> np.uint64(11)).astype(np.float64) / float(2**53)
    return u < rate


def _scatter(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """A full-length array with ``values`` where ``mask`` holds and "" elsewhere."""
    index = np.full(len(mask), len(values), dtype=np.int64)
    index[mask] = np.arange(len(values))
    return pa.concat_arrays([values, pa.array([""])]).take(pa.array(index))


def _optional(name: str, mask: np.ndarray, keys: np.ndarray, rng: np.random.Generator) -> pa.Array:
    if not mask.any():
        return pa.repeat("", len(mask)).cast(pa.string())
    return _scatter(GRAMMAR.expand(name, int(mask.sum()), rng, keys[mask]), mask)


def _bodies(kinds: np.ndarray, keys: np.ndarray, rng: np.random.Generator) -> pa.Array:
    order = np.argsort(kinds, kind="stable")
    bounds = np.searchsorted(kinds[order], np.arange(len(KINDS) + 1))
    parts = []
    for k, name in enumerate(KINDS):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            parts.append(GRAMMAR.expand(name, len(rows), rng, keys[rows]))
    inverse = np.empty(len(kinds), dtype=np.int64)
    inverse[order] = np.arange(len(kinds))
    return pa.concat_arrays(parts).take(pa.array(inverse))


def _typos(values: list[str], rng: np.random.Generator) -> list[str]:
    """Swap two adjacent letters at a random place in each string."""
    out = []
    for text, u in zip(values, rng.random(len(values)), strict=True):
        i = int(u * max(len(text) - 2, 0))
        out.append(text[:i] + text[i + 1 : i + 2] + text[i : i + 1] + text[i + 2 :])
    return out


def _noise(prompts: pa.Array, mask: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Human noise on the rows of ``mask``: lower case, dropped punctuation, fillers, typos."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return prompts
    how = rng.integers(0, 5, len(rows))
    pieces, where = [], []
    for j in range(5):
        sub = rows[how == j]
        if not len(sub):
            continue
        text = prompts.take(pa.array(sub))
        if j == 0:
            text = pc.utf8_lower(text)
        elif j == 1:
            text = pc.utf8_rtrim(text, characters=".?!")
        elif j == 2:
            fill = _PREFIXES.take(pa.array(rng.integers(0, len(_PREFIXES), len(sub))))
            text = pc.binary_join_element_wise(fill, text, "")
        elif j == 3:
            fill = _SUFFIXES.take(pa.array(rng.integers(0, len(_SUFFIXES), len(sub))))
            text = pc.binary_join_element_wise(text, fill, "")
        else:
            text = pa.array(_typos(text.to_pylist(), rng), type=pa.string())
        pieces.append(text)
        where.append(sub)
    index = np.arange(len(prompts))
    changed = np.concatenate(where)
    index[changed] = len(prompts) + np.arange(len(changed))
    return pa.concat_arrays([prompts, *pieces]).take(pa.array(index))


def render(
    kinds: np.ndarray,
    keys: np.ndarray,
    preamble: np.ndarray,
    cot: np.ndarray,
    fmt: np.ndarray,
    noise: np.ndarray,
    rng: np.random.Generator,
) -> pa.Array:
    """Prompts for requests described column-wise.

    Args:
        kinds: index into :data:`KINDS` per request.
        keys: uint64 skeleton key per request (equal keys share phrasing; slots still vary).
        preamble, cot, fmt: whether to add a role preamble, a chain-of-thought request and an
            output-format instruction.
        noise: whether to add human noise (typos, lower case, fillers).
        rng: randomness for slots and noise.
    """
    keys = keys.astype(np.uint64)
    body = _bodies(np.asarray(kinds), keys, rng)
    sep = _SEPARATORS.take(pa.array((mix_keys(keys, _SALT_SEP) % np.uint64(3)).astype(np.int64)))
    empty = pa.scalar("")
    pre = _optional("preamble", preamble, keys, rng)
    tail_cot = _optional("cot", cot, keys, rng)
    tail_fmt = _optional("format", fmt, keys, rng)
    prompts = pc.binary_join_element_wise(
        pre,
        pc.if_else(pa.array(preamble), sep, empty),
        body,
        pc.if_else(pa.array(cot), sep, empty),
        tail_cot,
        pc.if_else(pa.array(fmt), pa.scalar(" "), empty),
        tail_fmt,
        "",
    )
    return _noise(prompts, np.asarray(noise, dtype=bool), rng)
