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
- LayerNorm: centre each part, divide both by the total's std, scale (`prop_layer_norm`).
  The bias is split by the magnitudes of the normalized parts, as for a linear map; the
  reference splits it by the magnitudes of the *input* parts, which stop meaning much once
  each part is centred. RMSNorm: the same without centring and bias (Gemma: weight 1 + w);
  q/k norms (Qwen3) likewise, per head.
- RoPE is linear per position: applied to both parts. ALiBi is treated like the mask.
- Softmax attention (the reference's `prop_attention_no_output_hh` with
  `prop_attention_probs_tmp`): P = softmax(s(q, k)) with the true q, k; P_rel =
  softmax(s(q_rel, k_rel)); z_rel = P_rel v_rel; z_irrel = P v − z_rel. q/k/v parts come from
  the linear rule (biases split by magnitude, as the reference splits b_Q and b_K).
  This is what DESIGN §2.4 states (P_irrel = P − P_rel, z_irrel = P_rel v_irrel + P_irrel v):
  no difference to resolve. s(·) keeps each family's semantics for both patterns: scale,
  Gemma-2 softcap (before the mask), ALiBi, causal + padding mask, sliding window per layer.
  GQA: the source is a query head; shared K/V pairs are expanded to the query heads.
- Elementwise activations (`prop_act`): irrel' = f(irrel), rel' = f(total) − f(irrel).
  Gated MLPs (SwiGLU/GeGLU, ours): irrel' = f(g_i)·u_i, rel' = f(g)·u − irrel'.
  Gemma-2's final logit softcap is an elementwise activation.
- Not taken from the reference: `normalize_rel_irrel`, a heuristic it applies after most
  steps, which moves a position's value wholly to whichever part is larger where the two
  parts have opposite signs. It keeps the sum but makes rel non-additive and breaks the
  exact-ablation property above; the reference itself comments it out in places.

Speed (DESIGN §5): sources are batched along the batch dimension (`chunk` sources × B rows)
and each starts from the cached true residual entering its layer (one plain forward with
hooks; layers below a source are never recomputed); the last layer computes only the last
prompt position past K/V. Families: `supported_families()`; any other raises BadRequest.
"""

from .blocks import supported_families
from .engine import Trace, decompose_heads
from .pairs import Pair

__all__ = ["Pair", "Trace", "decompose_heads", "supported_families"]
