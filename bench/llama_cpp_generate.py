#!/usr/bin/env python3
"""llama.cpp's side of `hawthorne generate --max-tokens 32` on Gemma 3: the chat-formatted
prompt, then 32 greedy tokens one `eval` at a time, one thread, timed three times.

    python3 bench/llama_cpp_generate.py models/gemma-3-270m-q4_k_m.gguf

Needs llama-cpp-python and numpy.
"""
import sys
import time

import numpy as np
from llama_cpp import Llama

llm = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
ids = llm.tokenize(b"<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n", add_bos=True, special=True)
for _ in range(3):
    llm.reset()
    start = time.time()
    llm.eval(ids)
    for _ in range(32):
        llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
    print(f"llama.cpp: {len(ids)} prompt tokens, 32 generated in {time.time() - start:.2f} s")
