"""Every field of an ssd-jax run, documented in one place.

Each launcher (`launch/sample.py`, `train.py`, `evaluate.py`, `ssd.py`) reads the sections it
needs from the same config. Other configs start from `get_config()` here and change fields.
Override any field on the command line: `--config.sampling.temperature=1.2`.

Before any stage runs, the fields the stages read are checked against the ranges below
(`ssd_jax.stages.prepare` calls configs/validation.py). Sampling follows vLLM's
`SamplingParams` conventions: temperature >= 0 (0 = greedy; SSD's own sampling needs > 0),
top-k >= 1 or 0 for off, top-p in (0, 1] with 1.0 for off. A value that would silently change
the method (greedy SSD data, n_samples=0) is an error, and so is a field this file does not define.
"""

from ml_collections import ConfigDict

# The SSD data prompt's system message: ask for a Python solution in a markdown code block.
from ssd_jax.data.prompt_format import DEFAULT_SYSTEM_MESSAGE


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.workdir = "runs/base"  # All outputs of the run (samples/, train/, eval/, report), a directory or gs:// URL.
    c.model = "smollm2-135m-instruct"  # Base model: HF dir (local or gs://), .gguf, ssd-jax model dir, or built-in name.
    c.seed = 0  # Seeds sampling keys, data shuffling and anything else random.
    c.dtype = "float32"  # Compute dtype: float32 | bfloat16.
    c.param_dtype = "float32"  # Parameter storage dtype (master weights when training).
    c.stages = "sample,train,evaluate,report"  # What launch/ssd.py runs, comma-separated; finished ones are skipped.
    c.compilation_cache_dir = ""  # XLA's persistent compilation cache (local or gs://); "" = off.

    # Joining the other processes of a pod or cluster (ssd_jax/parallel/distributed.py).
    c.distributed = ConfigDict()
    c.distributed.cluster_detection = "auto"  # auto (JAX's: TPU VM/GKE, Slurm, MPI, k8s) | off | a JAX detector name.
    c.distributed.coordinator_address = ""  # host:port of process 0; set to skip detection (or JAX_COORDINATOR_ADDRESS).
    c.distributed.num_processes = 0  # With coordinator_address (or JAX_NUM_PROCESSES).
    c.distributed.process_id = -1  # With coordinator_address (or JAX_PROCESS_ID).
    c.distributed.initialization_timeout_s = 300  # How long to wait for every process to join.

    # Device mesh (data × fsdp × expert × model); -1 takes the devices left over. `expert` splits
    # a mixture of experts' experts (and, outside them, the batch).
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, expert=1, model=1))

    # Prompts for SSD data (stage 1).
    c.prompts = ConfigDict()
    c.prompts.source = "offline"  # rstar-coder | livecodebench | humaneval | jsonl | offline.
    c.prompts.path = ""  # Local file/dir for sources that read one ("" for offline/humaneval).
    c.prompts.limit = 0  # Use only the first N prompts (0 = all).
    c.prompts.require_passed = False  # rStar-Coder: keep only rows whose reference passed (paper: on).
    c.prompts.system_message = DEFAULT_SYSTEM_MESSAGE  # "" for no system message.
    # Keyword arguments for the chat template when rendering prompts (sampling) and training rows,
    # e.g. GPT-OSS's `reasoning_effort="high"`; set them in the config file.
    c.prompts.chat_template_kwargs = ConfigDict()

    # Sampling SSD data from the frozen base model (stage 1): T_train with top-k / top-p.
    c.sampling = ConfigDict()
    c.sampling.temperature = 1.6
    c.sampling.top_k = 20  # 0 = off.
    c.sampling.top_p = 0.8  # 1.0 = off.
    c.sampling.n_samples = 1  # Samples per prompt (paper: 1).
    c.sampling.max_new_tokens = 1024
    c.sampling.max_total_tokens = 0  # Prompt + response budget per sample (0 = the model's context); ends as `length`.
    c.sampling.batch_size = 32  # Rows decoded at once by each process (split over its devices' data axis).
    c.sampling.stop_strings = ()  # Extra stop strings, beside the model's end-of-turn tokens (matched after decoding).
    c.sampling.stop_token_ids = ()  # Extra token ids that end a sample, beside the model's eos / end-of-turn ids.
    c.sampling.page_size = 16  # Tokens per page of the sampler's paged KV cache.
    c.sampling.kv_cache_pages = 0  # KV pages per cache replica; 0 = kv_cache_gb, or enough for every slot's longest sample.
    c.sampling.kv_cache_gb = 0.0  # KV cache per device in GiB, when kv_cache_pages is 0 (0 = see kv_cache_pages).
    c.sampling.prefill_chunk = 256  # Prompt tokens prefilled per chunk between decode steps.
    # Each process samples on its own devices: `model_parallel` per model replica (tensor parallel), the rest
    # of its devices split the batch. Independent of `mesh` above, which is the training mesh.
    c.sampling.model_parallel = 1
    c.sampling.expert_parallel = 1  # Devices splitting a mixture-of-experts model's experts (each keeps its own cache replica).

    # Turning samples into training rows (stage 2 input pipeline).
    c.data = ConfigDict()
    c.data.samples_dir = ""  # Sample shards to train on ("" = <workdir>/samples, where sampling writes).
    c.data.filter = "minimal"  # minimal (paper) | shortest_percent | none (the stress test).
    c.data.shortest_percent = 10.0  # With filter=shortest_percent: also drop the shortest P %.
    c.data.max_length = 4096  # Tokens per training row.
    c.data.overlong = "drop"  # Examples longer than max_length: drop | truncate.
    c.data.pack = True  # Pack a micro-batch's examples into fewer rows (throughput only: same examples, same loss).
    c.data.packed_rows = 0  # With pack: rows per micro-batch (0 = the fewest that hold every micro-batch of the run).
    c.data.truncated = "drop"  # Samples that hit their token budget (finish reason `length`): drop | keep.
    c.data.epochs = 0  # Passes over the data, reshuffled each (0 = repeat until train.steps).
    c.data.read_threads = 4  # Grain threads that render and tokenize examples ahead of the step.

    # Fine-tuning (stage 2): AdamW, warmup + cosine, the paper's recipe by default.
    c.train = ConfigDict()
    c.train.steps = 2500
    c.train.global_batch = 32  # Examples per optimizer step (all devices, all accumulation steps), packed or not.
    c.train.micro_batch = 0  # Examples per forward/backward pass (0 = global_batch: no accumulation).
    c.train.peak_learning_rate = 5e-6
    c.train.final_learning_rate = 1e-6
    c.train.warmup_steps = 250
    c.train.b1 = 0.9
    c.train.b2 = 0.95
    c.train.weight_decay = 0.1
    c.train.grad_clip = 1.0
    c.train.remat = "none"  # Block rematerialisation policy: none | block | save_dots | save_qkv (models/remat.py).
    c.train.attention = "auto"  # auto | reference | blockwise | splash | cudnn (models/self_attention.py).
    c.train.checkpoint_every = 250
    c.train.keep_checkpoints = 3
    c.train.checkpoint_models = False  # Also export each checkpoint's model to train/models/step_<N> (eval.checkpoints=all).
    c.train.restore_fallback = False  # Latest checkpoint unreadable: resume from the newest readable one instead of stopping.
    c.train.async_checkpointing = True  # Write checkpoints in the background while training goes on.
    c.train.log_every = 50  # Also log a metrics line every N steps (metrics.jsonl gets every step).

    # Evaluation (stage 3): pass@k over a temperature grid, graded in a sandbox.
    c.eval = ConfigDict()
    c.eval.include_base = True  # Evaluate the base model (launch/ssd.py).
    c.eval.include_ssd = True  # Evaluate this run's SSD model (launch/ssd.py).
    c.eval.models = ()  # Extra refs (`name=ref`) to evaluate beside them.
    c.eval.benchmark = ConfigDict()
    c.eval.benchmark.name = "humaneval"  # humaneval | livecodebench.
    c.eval.benchmark.path = ""  # LiveCodeBench local copy (dir of test*.jsonl); "" = HumanEval's packaged file.
    c.eval.benchmark.release_version = "release_v6"  # LiveCodeBench files test.jsonl..test6.jsonl.
    c.eval.benchmark.window = ""  # v5 | v6 | "" (LiveCodeBench contest-date windows; the paper reports v6).
    c.eval.benchmark.start_date = ""  # Custom window, YYYY-MM-DD, inclusive.
    c.eval.benchmark.end_date = ""
    c.eval.benchmark.limit = 0  # Only the first N problems (0 = all).
    c.eval.temperatures = (0.6, 0.8, 1.0, 1.2)
    c.eval.top_k = 20
    c.eval.top_p = 0.8
    # The base model's own truncation (-1 = same as above); the paper's differs for Llama / GPT-OSS.
    c.eval.base_top_k = -1
    c.eval.base_top_p = -1.0
    c.eval.adaptive = ()  # Adaptive-temperature strengths a > 0: each adds "base+adaptive<a>" (T·(2(1-p1))^a per position).
    c.eval.n_samples = 10  # Samples per problem (paper: 10); pass@5 needs at least 5.
    c.eval.max_new_tokens = 1024
    c.eval.max_total_tokens = 0  # Prompt + response budget per sample (0 = the model's context).
    c.eval.batch_size = 32  # Rows decoded at once by each process.
    c.eval.model_parallel = 0  # Devices per model replica when sampling for evaluation (0 = sampling.model_parallel).
    c.eval.page_size = 16  # Tokens per page of the evaluation sampler's paged KV cache.
    c.eval.kv_cache_pages = 0  # KV pages per cache replica; 0 = kv_cache_gb, or enough for every slot's longest sample.
    c.eval.kv_cache_gb = 0.0  # KV cache per device in GiB, when kv_cache_pages is 0 (0 = see kv_cache_pages).
    c.eval.prefill_chunk = 256  # Prompt tokens prefilled per chunk between decode steps.
    c.eval.expert_parallel = 0  # Devices splitting the experts when sampling for evaluation (0 = sampling.expert_parallel).
    c.eval.chunk_size = 512  # Requests per generation call (samples are saved after each).
    c.eval.rescore = False  # Re-grade the saved samples (e.g. after changing grading limits) without generating.
    c.eval.system_message = None  # None = LiveCodeBench's; "" = none (prompt_style=livecodebench only).
    c.eval.prompt_style = "livecodebench"  # livecodebench (its current wording) | ml-ssd (the paper's released evaluation).
    c.eval.grader = "robust"  # robust (real stdin, run as __main__) | livecodebench (its runner, exactly).
    c.eval.chat_template_kwargs = ConfigDict()  # Keyword arguments for the chat template (e.g. reasoning_effort).
    c.eval.checkpoints = "final"  # final | all: also every saved training checkpoint, the best one marked.
    # Headline pass@1: "split" chooses T on one half of the problems and scores it on the other;
    # "fixed" reads it at headline_temperature (SSD model) / base_headline_temperature (base model).
    c.eval.headline = "split"
    c.eval.headline_temperature = 0.0
    c.eval.base_headline_temperature = 0.0
    c.eval.workers = 0  # Sandbox workers (0 = one per core).
    c.eval.allow_unsandboxed = False  # Run generated code WITHOUT isolation. Never on shared machines.
    c.eval.grading = ConfigDict()
    c.eval.grading.per_test_timeout_s = 6.0
    c.eval.grading.memory_mb = 4096
    # Lock/fork diagnostics (launch/analyze.py): next-token distributions of several models on the same responses.
    c.analysis = ConfigDict()
    c.analysis.models = ()  # `name=ref` entries, the first classifies positions; () = base model + <workdir>/train/final.
    c.analysis.samples = ""  # Sample shard dir or JSONL (prompt_text, completion); "" = <workdir>/samples.
    c.analysis.limit = 0  # Use only the first N responses (0 = all).
    c.analysis.max_response_tokens = 512  # Positions per response looked at (0 = all).
    c.analysis.batch_size = 8  # Responses per forward pass (a multiple of the data-parallel devices).
    c.analysis.temperatures = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0)  # Sweep, one pass.
    c.analysis.top_k = -1  # The models' truncation for the sweep (-1 = eval.top_k).
    c.analysis.top_p = -1.0  # (-1 = eval.top_p).
    c.analysis.reference_temperature = 1.0  # Temperature of the truncated entropy in the bins and classes.
    c.analysis.max_rank = 256  # Survivor counts are exact below this many tokens (above: flagged, lower bound).
    c.analysis.lock_min_top1 = 0.75  # Lock: the first model's top-1 probability >= this.
    c.analysis.fork_max_top1 = 0.5  # Fork: top-1 < this and truncated entropy >= fork_min_entropy (nats).
    c.analysis.fork_min_entropy = 0.6931  # ln 2.
    c.analysis.out_dir = ""  # "" = <workdir>/analysis.
    return c
