"""Reciprocal rank fusion: lists ranked by incomparable scores (cosine similarity, bm25, or dense
lists of two embedding models) merged by rank alone: score(chunk) = sum over lists of 1 / (k + rank),
rank counted from 1 (Cormack, Clarke and Büttcher, 2009; k = 60 as there)."""

from plateforme.retrieval.index import Hit

RRF_K = 60


def reciprocal_rank_fusion(ranked_lists: list[list[Hit]], k: int = RRF_K, limit: int | None = None,
                           weights: list[float] | None = None) -> list[Hit]:
    """One list, best first, scored by RRF (each list's votes times its weight, 1 by default). Ties
    go to the chunk with the better single rank, then to the lower chunk id: the order is deterministic."""
    scores: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    if weights is None:
        weights = [1.0] * len(ranked_lists)
    if len(weights) != len(ranked_lists):
        raise ValueError(f"{len(weights)} weights for {len(ranked_lists)} lists")
    for hits, weight in zip(ranked_lists, weights):
        seen: set[int] = set()
        for rank, hit in enumerate(hits, start=1):
            if hit.chunk_id in seen:  # a list names a chunk once; a repeat is not a second vote
                continue
            seen.add(hit.chunk_id)
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (k + rank)
            best_rank[hit.chunk_id] = min(best_rank.get(hit.chunk_id, rank), rank)
    order = sorted(scores, key=lambda cid: (-scores[cid], best_rank[cid], cid))
    if limit is not None:
        order = order[:limit]
    return [Hit(cid, scores[cid]) for cid in order]
