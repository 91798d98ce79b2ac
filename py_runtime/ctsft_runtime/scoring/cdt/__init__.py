"""Contextual decomposition (CD-T) of the class logits w.r.t. attention heads, plain PyTorch.

Interface (used by the `cdt` / `cdt-unsigned` scorers)::

    decompose_heads(model, head_map, input_ids [B, T], attention_mask [B, T], last_index [B],
                    token_ids: Sequence[int] | None, mean_z [L, H, d_head],
                    sources: Sequence[tuple[int, int]], *, chunk=16, check=lambda: None,
                    trace=None) -> (rel [S, B, C], irrel [S, B, C])

For source head s = (l, h), its output before O at layer l, z_s (all positions), is split
into β = z_s − μ_s (relevant) and γ = μ_s (irrelevant), μ_s = mean_z[l, h]; everything else
entering layer l (the residual, the other heads' z, O's bias) is irrelevant. The pair is
propagated to the class logits with the rules below; rel + irrel always equals the true
value (checked at the end against the plain forward: a mismatch raises, never returns).

Rules (`pairs.py`), and how they relate to the reference, github.com/adelaidehsu/CD_Circuit
(`pyfunctions/cdt_core.py`, `cdt_ablations.py`, `cdt_source_to_target.py`):

- Linear maps act on both parts; a bias is split elementwise in proportion to |rel W| and
  |irrel W| (`prop_linear_core`). Ours gives the whole bias to irrel where both parts are 0
  (the reference's +1e-8 denominator drops it there and breaks rel + irrel = total).
- At the source layer O's bias goes wholly to irrel (it is no head's output). The reference
  splits it by magnitude in `prop_linear(..., attn_wrapper.output)` after patching the source
  (`set_rel_at_source_nodes`). Ours keeps rel exactly equal to the mean-ablation effect
  z_s -> μ_s whenever the path to the logits is linear (tested).
- Norms (LayerNorm, RMSNorm with Gemma's 1 + w, Qwen3's per-head q/k norms) are treated as
  the nonlinearities they are, with the activation rule below: irrel' = N(irrel), rel' =
  N(total) − N(irrel); a LayerNorm bias lands in irrel. **Differs from the reference and from
  DESIGN §2.4**, which divide both parts by the total's scale: measured (docs/method.md), that
  linearization lets parts that cancel (irrel ≈ −rel) stay large through every norm and grow
  to ±10⁶ in the layers after (the cdt-blowup fixture), and it ranks heads far from exact
  mean-ablation on trained Llama/Qwen2 models. With this rule every norm output is O(1).
- RoPE is linear per position: applied to both parts. ALiBi is treated like the mask.
- Softmax attention (`pattern`): `decomposed` (default) is the reference's
  `prop_attention_no_output_hh` with `prop_attention_probs_tmp`: P = softmax(s(q, k)) with
  the true q, k; P_rel = softmax(s(q_rel, k_rel)); z_rel = P_rel v_rel; z_irrel = P v − z_rel
  (DESIGN §2.4 says the same). `frozen` is its older `prop_self_attention`: z_rel = P v_rel.
  A symmetric two-player Shapley rule was measured too: as faithful, twice the cost, so not
  kept (docs/method.md). s(·) keeps each family's semantics: scale, Gemma-2 softcap (before
  the mask), ALiBi, causal + padding mask, sliding window per layer. GQA: the source is a
  query head; shared K/V pairs are expanded to the query heads.
- Elementwise activations (`prop_act`): irrel' = f(irrel), rel' = f(total) − f(irrel).
  Gated MLPs (SwiGLU/GeGLU, ours): irrel' = f(g_i)·u_i, rel' = f(g)·u − irrel'. This rule
  squares parts that cancel, which is how the linearized norm rule's large parts turned into
  ±10⁶; with norms as nonlinearities g and u are O(1).
  Gemma-2's final logit softcap is an elementwise activation.
- Not taken from the reference: `normalize_rel_irrel`, a heuristic it applies after most
  steps, which moves a position's value wholly to whichever part is larger where the two
  parts have opposite signs. It keeps the sum but makes rel non-additive and breaks the
  exact-ablation property above; the reference itself comments it out in places. Measured as
  a cure for the blow-up (docs/method.md): it bounds the parts but does not make the ranking
  agree with ablation; the norm rule above does both.

Speed (DESIGN §5): sources are batched along the batch dimension (`chunk` sources × B rows)
and each starts from the cached true residual entering its layer (one plain forward with
hooks; layers below a source are never recomputed); the last layer computes only the last
prompt position past K/V. Families: `supported_families()`; any other raises BadRequest.
"""

from .blocks import supported_families
from .engine import Trace, decompose_heads
from .pairs import Pair

__all__ = ["Pair", "Trace", "decompose_heads", "supported_families"]
