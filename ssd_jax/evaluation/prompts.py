"""What the evaluator asks a model, and where the answer is in its response.

The prompt is LiveCodeBench's instruct format or the paper's released evaluation's
(`PROMPT_STYLES`); the program is the response's last fenced code block (LiveCodeBench's rule).
"""

from __future__ import annotations

from ssd_jax.errors import ConfigError
from ssd_jax.problems.types import BenchmarkProblem


# -- the prompt: LiveCodeBench's instruct format, or the paper's released evaluation's -----------
# `livecodebench`: LiveCodeBench's own wording (its `PromptConstants` and generic question
# template, `lcb_runner/prompts/code_generation.py`, with the sentence it added to the stdin
# format in 2025), so scores are comparable with its leaderboard. `ml-ssd`: the wording of the
# paper's released evaluation (apple/ml-ssd `evaluation/benchmark.py`): a single user turn, no
# system message. HumanEval problems use the starter-code form with the function prompt as the
# starter code. The model's chat template renders these messages.
PROMPT_STYLES = ("livecodebench", "ml-ssd")
SYSTEM_MESSAGE_GENERIC = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will "
    "generate a correct Python program that matches the specification and passes all tests. You will NOT "
    "return anything except for the program."
)
FORMATTING_MESSAGE_WITH_STARTER_CODE = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters."
)
FORMATTING_WITHOUT_STARTER_CODE = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "
    "the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program "
    "runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)
ML_SSD_INSTRUCTION = (
    "You will be given a question (problem specification) and will generate a correct Python program that "
    "matches the specification and passes all tests. You will NOT return anything except for the program."
)
ML_SSD_WITHOUT_STARTER_CODE = (
    ML_SSD_INSTRUCTION + "\n\nQuestion: {statement}\n\n" + FORMATTING_WITHOUT_STARTER_CODE
    + "\n```python\n  # YOUR CODE HERE\n```"
)
ML_SSD_WITH_STARTER_CODE = (
    ML_SSD_INSTRUCTION + "\n\nQuestion: {statement}\n\nYou will use the following starter code to write the "
    "solution to the problem and enclose your code within delimiters as follows.\n```python\n{starter_code}\n```"
)


def question_prompt(statement: str, starter_code: str) -> str:
    """LiveCodeBench's user turn: `### Question:`, `### Format:` (starter code or a stub), `### Answer:`."""
    prompt = f"### Question:\n{statement}\n\n"
    if starter_code:
        prompt += f"### Format: {FORMATTING_MESSAGE_WITH_STARTER_CODE}\n"
        prompt += f"```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {FORMATTING_WITHOUT_STARTER_CODE}\n"
        prompt += "```python\n# YOUR CODE HERE\n```\n\n"
    prompt += "### Answer: (use the provided format with backticks)\n\n"
    return prompt


def ml_ssd_prompt(problem: BenchmarkProblem) -> str:
    """The released evaluation's user turn: stdin problems without starter code, the rest with it."""
    if problem.kind == "stdin":
        return ML_SSD_WITHOUT_STARTER_CODE.format(statement=problem.statement)
    starter = problem.starter_code.rstrip("\n") if problem.kind == "script" else problem.starter_code
    return ML_SSD_WITH_STARTER_CODE.format(statement=problem.statement, starter_code=starter)


def benchmark_messages(problem: BenchmarkProblem, system_message: str | None = SYSTEM_MESSAGE_GENERIC,
                       style: str = "livecodebench") -> list[dict[str, str]]:
    """The chat messages for `problem` in prompt `style`. livecodebench: [system, user], an empty
    or None `system_message` leaving the system turn out (for chat templates without a system
    role); ml-ssd: [user] only."""
    if style not in PROMPT_STYLES:
        raise ConfigError(f"config.eval.prompt_style={style!r}: choose one of {PROMPT_STYLES}")
    if style == "ml-ssd":
        return [{"role": "user", "content": ml_ssd_prompt(problem)}]
    messages = [{"role": "system", "content": system_message}] if system_message else []
    starter = problem.starter_code.rstrip("\n") if problem.kind == "script" else problem.starter_code
    messages.append({"role": "user", "content": question_prompt(problem.statement, starter)})
    return messages


# -- the program inside a response: its last fenced code block (LiveCodeBench's rule) -----------
def extract_code(response: str) -> str | None:
    """The lines between the last two lines that contain a ``` fence; None if there are fewer
    than two such lines or the block is blank (the sample then fails as `no_code`)."""
    lines = response.split("\n")
    fences = [index for index, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    code = "\n".join(lines[fences[-2] + 1:fences[-1]])
    return code if code.strip() else None
