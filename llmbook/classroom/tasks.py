"""The tasks of the classroom edition, chapter by chapter (hand-written; chapters 01-09's exercises).

``TASKS`` lists each function or method body a student writes, with the tests that cover it
(``Task``); ``llmbook.classroom.checker`` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TASKS", "Task"]


@dataclass(frozen=True)
class Task:
    """A function or method body a student writes: ``chapter`` ("04"), ``name`` (the exported
    function, or ``Class.method``), and ``tests``: patterns (fnmatch) of the test functions that
    cover it, in ``tests/test_<module>.py`` (``"test_name*"``) or in another file of tests/
    (``"test_hf.py::test_name*"``: the Hugging Face parity tests, and the ``test_tasks_*.py``
    files written for the checker)."""

    chapter: str
    name: str
    tests: tuple[str, ...]

    @property
    def id(self) -> str:
        """``"04.2"``: the chapter and the task's place among the chapter's tasks."""
        same = [t for t in TASKS if t.chapter == self.chapter]
        return f"{self.chapter}.{same.index(self) + 1}"

    @property
    def label(self) -> str:
        return f"{self.id} {self.name}"


# In the order the regions appear in each chapter (a test checks it). A task's patterns go from
# its most telling tests to the broadest: a failure report names the first failing test.
TASKS = [
    Task(
        "01",
        "pair_counts",
        ("test_pair_counts_and_merge_pair", "test_incremental_training_equals_naive_*"),
    ),
    Task(
        "01",
        "merge_pair",
        (
            "test_pair_counts_and_merge_pair",
            "test_classic_example_aaabdaaabac",
            "test_incremental_training_equals_naive_*",
            "test_tie_break_takes_the_smallest_pair",
            "test_layers_agree",
        ),
    ),
    Task(
        "01",
        "RegexBPE.encode_ordinary",
        (
            "test_classic_example_aaabdaaabac",
            "test_decode_encode_round_trip_any_unicode",
            "test_from_tiktoken_gives_identical_ids",
            "test_lone_surrogates_encode_as_in_tiktoken",
            "test_layers_agree",
        ),
    ),
    Task(
        "01",
        "_split_specials",
        (
            "test_training_layout_and_specials",
            "test_round_trip_with_special_tokens_allowed",
            "test_special_token_handling",
            "test_specials_outside_the_allowed_set_*",
            "test_from_tiktoken_gives_identical_ids",
            "test_tasks_tokenizer.py::test_split_specials_*",
            "test_tasks_tokenizer.py::test_encode_takes_the_longest_special_token",
        ),
    ),
    Task(
        "02",
        "SlidingWindowDataset.__getitem__",
        (
            "test_windows_are_slices_shifted_by_one",
            "test_every_token_is_covered_*",
            "test_indexing",
            "test_numpy_and_memmap_ids_*",
            "test_dataloader_shapes_and_shift",
            "test_token_file_windows_match_in_memory",
        ),
    ),
    Task(
        "02",
        "random_batch",
        (  # by its behaviour; not test_random_batch_is_one_function_..., which fixes the stream
            "test_random_batch_from_a_token_file",
            "test_random_batch_reaches_both_ends",
            "test_tasks_data.py::test_random_batch_*",
        ),
    ),
    Task(
        "03",
        "_position_ids",
        (
            "test_learned_positions_by_length_*",
            "test_learned_positions_broadcast_*",
            "test_too_long_*",
        ),
    ),
    Task(
        "03",
        "sinusoidal_positions",
        (
            "test_sinusoidal_matches_*",
            "test_sinusoidal_float32_*",
            "test_sinusoidal_first_row_*",
            "test_relative_offset_*",
            "test_offset_matrix_*",
            "test_dot_product_depends_*",
            "test_sinusoidal_dtype_device_and_empty",
        ),
    ),
    Task("04", "causal_mask", ("test_causal_mask_*", "test_without_the_mask_*")),
    Task(
        "04",
        "scaled_dot_product_attention",
        (
            "test_matches_torch_*",
            "test_is_causal_follows_*",
            "test_more_keys_than_queries_*",
            "test_additive_minus_inf_*",
            "test_leading_shapes",
            "test_batch_axes_broadcast",
            "test_fully_masked_row_*",
            "test_weights_*",
            "test_dropout_zero*",
            "test_dropout_zeroes_*",
            "test_dropout_is_reproducible*",
            "test_empty_queries_*",
            "test_check_false_*",
        ),
    ),
    Task(
        "04",
        "CausalSelfAttention.forward",
        (
            "test_causal_self_attention_*",
            "test_prefix_gives_*",
            "test_module_matches_*",
            "test_module_accepts_*",
            "test_module_dropout_*",
            "test_module_works_*",
        ),
    ),
    Task(
        "05",
        "repeat_kv",
        (
            "test_repeat_kv_maps_query_head_to_its_group",
            "test_fused_equals_naive_path",
            "test_fused_path_shares_kv_heads_with_enable_gqa",
        ),
    ),
    Task(
        "05",
        "rotate_pairs",
        (
            "test_rotate_pairs_is_a_quarter_turn",
            "test_rope_preserves_norms",
            "test_rope_scores_depend_only_on_the_offset",
            "test_interleaved_layout_equals_complex_multiplication",
            "test_rope_equals_hugging_face_llama",
        ),
    ),
    Task(
        "05",
        "apply_rope",
        (
            "test_apply_rope_shapes_and_errors",
            "test_rope_preserves_norms",
            "test_rope_scores_depend_only_on_the_offset",
            "test_rope_at_position_zero_*",
            "test_interleaved_layout_equals_complex_multiplication",
            "test_rope_equals_hugging_face_llama",
            "test_positions_per_sequence",
            "test_bfloat16_matches_hugging_face_llama_attention",
        ),
    ),
    Task(
        "05",
        "MultiHeadProjections.project",
        (
            "test_naive_equals_efficient",
            "test_gqa_equals_mha_with_repeated_kv_projections",
            "test_plain_mha_matches_a_manual_computation",
            "test_mqa_matches_a_manual_computation",
            "test_equals_torch_multihead_attention",
            "test_attention_equals_hugging_face_llama_attention",
        ),
    ),
    Task(
        "06",
        "FeedForward.forward",
        (
            "test_feed_forward_*",
            "test_activations_are_told_apart",
            "test_hf.py::test_one_block_equals_transformers_layer",
        ),
    ),
    Task("06", "swiglu_hidden_size", ("test_swiglu_hidden_size*",)),
    Task(
        "06",
        "SwiGLU.forward",
        (
            "test_swiglu_matches_*",
            "test_swiglu_formula_*",
            "test_hf.py::test_one_block_equals_transformers_layer",
        ),
    ),
    Task(
        "06",
        "RMSNorm.forward",
        ("test_rms_norm_*", "test_hf.py::test_one_block_equals_transformers_layer"),
    ),
    Task(
        "07",
        "Decoder.forward",
        (
            "test_tasks_model.py::test_decoder_output_is_the_final_norm_*",
            "test_tasks_model.py::test_final_norm_gain_*",
            "test_hf.py::test_from_hf_equals_transformers",
            "test_forward_shapes_and_loss",
            "test_causal",
            "test_explicit_positions",
            "test_untrained_loss_near_ln_vocab",
            "test_tied_weights_are_shared",
            "test_compile_fullgraph",
        ),
    ),
    Task(
        "07",
        "init_weights",
        ("test_init_std", "test_init_weights_reinitialises", "test_untrained_loss_near_ln_vocab"),
    ),
    Task("07", "greedy_generate", ("test_greedy_*",)),
    Task("08", "cross_entropy", ("test_cross_entropy_*",)),
    Task("08", "AdamW.step", ("test_adamw_matches_torch", "test_tasks_training.py::test_adamw_*")),
    Task("08", "lr_schedule", ("test_lr_schedule_shape", "test_tasks_training.py::test_lr_*")),
    Task(
        "08",
        "clip_grad_norm",
        ("test_clip_grad_norm_matches_torch", "test_tasks_training.py::test_clip_grad_norm_*"),
    ),
    Task("09", "top_k_filter", ("test_top_k_keeps_exactly_k_as_hf", "test_chain_order_as_hf_*")),
    Task("09", "top_p_filter", ("test_top_p_keeps_the_smallest_set_*", "test_chain_order_as_hf_*")),
    Task(
        "09",
        "sample_next",
        (
            "test_sample_next_*",
            "test_tiny_temperatures_draw_the_argmax",
            "test_generate_cached_equals_uncached",
            "test_temperature_to_zero_approaches_greedy",
            "test_same_seed_same_output",
            "test_chain_order_as_hf_*",
        ),
    ),
    Task(
        "09",
        "KVCache.update",
        (
            "test_cached_logits_equal_recomputed",
            "test_rope_offsets_are_the_cache_length",
            "test_generate_cached_equals_uncached",
            "test_left_padded_batch_equals_each_prompt_alone",
        ),  # not test_bad_kv_caches nor test_kv_cache_memory_and_overflow: they pass unwritten
    ),
]
