"""SARB: semantic-aware representation blending for partial labels (Pu et al., AAAI 2022).

Multi-label recognition with partial labels: every training image knows only
some of its ``C`` labels (targets ``(B, C)`` in ``{1, 0, -1}``: known positive,
unknown, known negative). SARB learns one representation per class and image,
and fills unknown labels by *blending* representations:

* **CSRL by semantic decoupling** (:class:`SemanticDecoupling`): for class
  ``c`` with embedding ``x_c``, an attention over the feature map's positions
  ``a_{c,wh} = softmax_wh(fc4(fc3(tanh(fc1(f_wh) * fc2(x_c)))))`` and the
  category feature ``f_c = sum_wh a_{c,wh} f_wh``.
* **The classifier** (:class:`GatedGNN` + :class:`ClassOutput`): a gated graph
  neural network over the classes (3 steps; the adjacency is the conditional
  co-occurrence ``P(j | i)`` of the *partial training labels*), then
  ``o_c = tanh(W [h_c; f_c])`` and one linear score per class.
* **ILRB** (:func:`instance_blend`): image ``n`` is paired with another image
  ``m`` of the batch; for every class unknown in ``n`` and known positive in
  ``m`` the category feature becomes ``alpha f_c^n + (1 - alpha) f_c^m`` with the
  soft target ``1 - alpha``.
* **PLRB** (:func:`prototype_blend`): per class, K-means prototypes of the
  category features of the known positives (:func:`compute_prototypes`); for one
  unknown class of every image, ``beta f_c^n + (1 - beta) p_c^k`` with the target
  ``1 - beta``.

The blended features go through the same classifier; blending happens in
training only (``model.train()`` and :meth:`SARB.set_blending`), and every
output is a :class:`MultiLabelOutput`. :class:`LinearMultiLabel` is the plain
baseline (backbone, global average pool, one linear layer); ``SARB(...,
ilrb=False, plrb=False)`` is the SSGRL-style baseline (the same CSRL and graph,
no blending).

Where the library departs from the official code, as documented options:

* ``alpha`` and ``beta`` are ``sigmoid`` of a learnable logit (initialised at
  0.5), so they stay in ``(0, 1)`` without clipping; ``learn_blend=False`` fixes
  them at 0.5 (the paper's ablation).
* A class with fewer than ``K`` known positives gets as many prototypes as it
  has distinct features; a class with none gets no prototype and is never
  blended; an image with no unknown label is left out of the blended losses.
* PLRB draws its one unknown class per image among the classes that have a
  prototype, and refuses to blend before prototypes were ever computed.
* A blend never changes a known label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision.models import WeightsEnum

from hmglib.checks import check_partial_labels
from hmglib.hierarchy import LabelTree
from hmglib.models.backbones import resolve_backbone

__all__ = [
    "MultiLabelOutput", "SemanticDecoupling", "GatedGNN", "ClassOutput", "SARB",
    "LinearMultiLabel", "instance_blend", "prototype_blend", "blend_partners",
    "compute_prototypes", "prototypes_from_positives", "sarb", "ssgrl", "linear_multilabel",
]


# ------------------------------------------------------------------ checks
def _check_adjacency(adjacency: object, classes: int) -> torch.Tensor:
    a = torch.as_tensor(adjacency, dtype=torch.float32)
    if tuple(a.shape) != (classes, classes):
        raise ValueError(f"SARB: adjacency must be ({classes}, {classes}), got shape "
                         f"{tuple(a.shape)}.")
    if not bool(torch.isfinite(a).all()) or bool((a < 0).any()) or bool((a > 1).any()):
        raise ValueError("SARB: adjacency must hold conditional probabilities in [0, 1] "
                         "(hmglib.data.empirical_cooccurrence of the partial training labels).")
    return a * (1 - torch.eye(classes))  # self-loops are the GRU's own state


# ------------------------------------------------------------------ output
@dataclass
class MultiLabelOutput:
    """What the multi-label models return.

    Attributes:
        logits: ``(B, C)`` class scores (apply a sigmoid for probabilities).
        features: ``(B, C, D)`` category-specific features ``f_c`` (SARB), or
            ``None`` (the linear baseline).
        attention: ``(B, C, h, w)`` semantic-decoupling attention, each map summing
            to 1 over its ``h * w`` positions, or ``None``.
        instance_logits, instance_targets: ``(B, C)`` scores of the ILRB-blended
            features and their targets (values in ``{-1, 0} | (0, 1]``: known
            labels unchanged, ``1 - alpha`` where blended, 0 unknown), on the rows
            that received a blend; ``None`` outside training or without ILRB.
        prototype_logits, prototype_targets: the same for PLRB (``1 - beta``).
    """

    logits: torch.Tensor
    features: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    instance_logits: torch.Tensor | None = None
    instance_targets: torch.Tensor | None = None
    prototype_logits: torch.Tensor | None = None
    prototype_targets: torch.Tensor | None = None

    def probabilities(self) -> torch.Tensor:
        """``(B, C)`` sigmoid of the logits, in ``[0, 1]``."""
        return torch.sigmoid(self.logits)


# ------------------------------------------------------------------ parts
class SemanticDecoupling(nn.Module):
    """Category-specific representations by semantic decoupling (Chen et al., ICCV 2019).

    ``fc1: D -> H`` on every position, ``fc2: E -> H`` on every class embedding,
    ``fc3: H -> H``, ``fc4: H -> 1`` (1024 -> 512, 300 -> 512, 512 -> 512, 512 -> 1
    in the paper).

    Args:
        feature_dim: ``D``, the channels of the feature map.
        embed_dim: ``E``, the width of the class embeddings.
        hidden: ``H``.
    """

    def __init__(self, feature_dim: int, embed_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, hidden, bias=False)
        self.fc2 = nn.Linear(embed_dim, hidden, bias=False)
        self.fc3 = nn.Linear(hidden, hidden)
        self.fc4 = nn.Linear(hidden, 1)

    def forward(self, fmap: torch.Tensor, embeddings: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``fmap`` ``(B, D, h, w)``, ``embeddings`` ``(C, E)`` → ``(features (B, C, D),
        attention (B, C, h, w))``, every attention map summing to 1."""
        b, d, h, w = fmap.shape
        f = fmap.flatten(2).transpose(1, 2)  # (B, P, D), P = h * w
        joint = torch.tanh(self.fc1(f)[:, None] * self.fc2(embeddings)[None, :, None])
        # joint: (B, C, P, H)
        scores = self.fc4(self.fc3(joint)).squeeze(-1)  # (B, C, P)
        attention = torch.softmax(scores, dim=-1)  # (B, C, P)
        features = attention @ f  # (B, C, D)
        return features, attention.reshape(b, -1, h, w)  # (B, C, h, w)


class GatedGNN(nn.Module):
    """A gated graph neural network over the classes (Li et al., ICLR 2016), as SSGRL.

    Node ``c`` starts at ``h_c = f_c``; each of ``steps`` steps gathers the
    messages ``a_c = [sum_j A[j, c] h_j ; sum_j A[c, j] h_j]`` (along and against
    the edges) and updates the node with a GRU cell: ``z = sigmoid(W_z a + U_z
    h)``, ``r = sigmoid(W_r a + U_r h)``, ``h~ = tanh(W a + U (r * h))``, ``h <- (1 -
    z) h + z h~``.

    A class whose row and column of ``A`` are zero (never seen positive in the
    partial labels) receives no message: its state evolves from its own feature
    alone, never NaN.

    Args:
        dim: ``D``, the node state width.
        steps: propagation steps (3 in the paper).
    """

    def __init__(self, dim: int, steps: int = 3) -> None:
        super().__init__()
        if int(steps) < 1:
            raise ValueError(f"GatedGNN: steps={steps} must be >= 1.")
        self.steps = int(steps)
        self.w = nn.Linear(2 * dim, 3 * dim)  # the messages -> z, r, candidate
        self.u_zr = nn.Linear(dim, 2 * dim, bias=False)
        self.u_h = nn.Linear(dim, dim, bias=False)

    def forward(self, features: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``features`` ``(B, C, D)``, ``adjacency`` ``(C, C)`` in ``[0, 1]`` → ``(B, C, D)``."""
        h = features
        a_in, a_out = adjacency.T, adjacency  # (C, C): [c, j] = A[j, c] and A[c, j]
        for _ in range(self.steps):
            msg = torch.cat([a_in @ h, a_out @ h], dim=-1)  # (B, C, 2D)
            wz, wr, wh = self.w(msg).chunk(3, dim=-1)  # 3 x (B, C, D)
            uz, ur = self.u_zr(h).chunk(2, dim=-1)  # 2 x (B, C, D)
            z, r = torch.sigmoid(wz + uz), torch.sigmoid(wr + ur)
            candidate = torch.tanh(wh + self.u_h(r * h))
            h = (1 - z) * h + z * candidate
        return h


class ClassOutput(nn.Module):
    """``o_c = tanh(W [h_c; f_c])`` and one linear score per class, ``s_c = v_c . o_c + b_c``.

    Args:
        num_classes: ``C``.
        dim: ``D`` (the width of ``h_c`` and ``f_c``; ``W`` maps ``2D -> D``).
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.fuse = nn.Linear(2 * dim, dim)
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.uniform_(self.weight, -dim ** -0.5, dim ** -0.5)

    def forward(self, states: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``states``, ``features`` ``(B, C, D)`` → logits ``(B, C)``."""
        o = torch.tanh(self.fuse(torch.cat([states, features], dim=-1)))  # (B, C, D)
        return (o * self.weight).sum(-1) + self.bias  # (B, C)


# ------------------------------------------------------------------ blending
def blend_partners(batch: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """ILRB's pairing: ``(B,)`` long, image ``n``'s partner ``(n + k) % B`` for one random
    shift ``k`` in ``1..B-1``, so nobody is paired with itself (``B >= 2``)."""
    if batch < 2:
        raise ValueError(f"blend_partners: a batch of {batch} has no pairs; ILRB needs >= 2.")
    k = int(torch.randint(1, batch, (1,), generator=generator))
    return (torch.arange(batch, device=device) + k) % batch  # (B,)


def _blend(features: torch.Tensor, others: torch.Tensor, targets: torch.Tensor,
           mask: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = weight.to(features.dtype)
    blended = torch.where(mask[..., None], w * features + (1 - w) * others, features)  # (B,C,D)
    soft = torch.where(mask, (1 - w).to(features.dtype).expand_as(targets),
                       targets.to(features.dtype))  # (B, C)
    return blended, soft


def instance_blend(features: torch.Tensor, targets: torch.Tensor, alpha: torch.Tensor,
                   partners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ILRB on a batch.

    Args:
        features: ``(B, C, D)`` category features.
        targets: ``(B, C)`` partial labels in ``{1, 0, -1}``.
        alpha: scalar tensor in ``[0, 1]`` (learnable: gradients flow to it through
            the blend and through the soft target).
        partners: ``(B,)`` long, the image each one borrows from (:func:`blend_partners`).

    Returns:
        ``(blended (B, C, D), soft_targets (B, C), mask (B, C) bool)``: where ``mask``
        (``targets[n, c] == 0`` and ``targets[partners[n], c] == 1``),
        ``alpha f_c^n + (1 - alpha) f_c^m`` with target ``1 - alpha``; elsewhere the
        features and the targets unchanged (a known label is never changed).
    """
    mask = (targets == 0) & (targets[partners] == 1)  # (B, C)
    blended, soft = _blend(features, features[partners], targets, mask, alpha)
    return blended, soft, mask


def prototype_blend(features: torch.Tensor, targets: torch.Tensor, prototypes: torch.Tensor,
                    counts: torch.Tensor, beta: torch.Tensor,
                    generator: torch.Generator | None = None, one_per_image: bool = True,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PLRB on a batch: an unknown class of an image borrows one of its class's
    prototypes, drawn uniformly.

    As the paper does, each image blends *one* unknown class, drawn uniformly
    among its unknown classes that have a prototype (an image with none is not
    blended); ``one_per_image=False`` blends every such entry.

    Args:
        features: ``(B, C, D)`` category features.
        targets: ``(B, C)`` partial labels in ``{1, 0, -1}``.
        prototypes: ``(C, K, D)``; class ``c``'s first ``counts[c]`` rows are its
            prototypes (:func:`compute_prototypes`).
        counts: ``(C,)`` long in ``0..K``; a class with 0 is never blended.
        beta: scalar tensor in ``[0, 1]``.
        generator: draws the blended class of every image and its prototype.
        one_per_image: blend one unknown class per image (the paper) or all of them.

    Returns:
        ``(blended (B, C, D), soft_targets (B, C), mask (B, C) bool)``, as
        :func:`instance_blend` with ``beta`` and target ``1 - beta``.
    """
    b, c, _ = features.shape
    counts = counts.to(features.device)
    mask = (targets == 0) & (counts > 0)[None]  # (B, C): the entries that may blend
    if one_per_image:
        draw = torch.rand(b, c, generator=generator).to(features.device)  # (B, C)
        pick = draw.masked_fill(~mask, -1.0).argmax(dim=1)  # (B,): one eligible class
        one = torch.zeros_like(mask)
        one[torch.arange(b, device=mask.device), pick] = True
        mask = mask & one  # (B, C), a row without an eligible class stays empty
    u = torch.rand(b, c, generator=generator).to(features.device)  # (B, C)
    k = (u * counts[None]).long().clamp(max=prototypes.shape[1] - 1).clamp(min=0)  # (B, C)
    chosen = prototypes.to(features)[torch.arange(c, device=features.device)[None], k]
    # chosen: (B, C, D)
    blended, soft = _blend(features, chosen, targets, mask, beta)
    return blended, soft, mask


def prototypes_from_positives(per_class: Sequence[torch.Tensor], k: int = 10, seed: int = 0,
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """K-means prototypes of each class's known-positive features (scikit-learn's
    ``KMeans``, ``n_init=3``, ``random_state=seed``).

    Args:
        per_class: ``C`` tensors ``(n_c, D)``: class ``c``'s category features of the
            images where ``c`` is a known positive (``n_c`` may be 0).
        k: prototypes per class (10 in the paper).
        seed: K-means' seed.

    Returns:
        ``(prototypes (C, k, D) float32, counts (C,) long)``: class ``c`` has
        ``counts[c] = min(k, distinct features among its n_c)`` prototypes in its
        first rows (zeros after them); a class without a known positive has none.

    Raises:
        ValueError: ``k < 1``, no class, or features of different widths.
    """
    from sklearn.cluster import KMeans

    if int(k) < 1:
        raise ValueError(f"prototypes_from_positives: k={k} must be >= 1.")
    if not per_class:
        raise ValueError("prototypes_from_positives: per_class is empty; give one (n_c, D) "
                         "tensor per class.")
    widths = {int(f.shape[-1]) for f in per_class}
    if len(widths) != 1 or any(f.dim() != 2 for f in per_class):
        raise ValueError("prototypes_from_positives: every class's features must be (n_c, D) "
                         f"with one D; got shapes {[tuple(f.shape) for f in per_class][:5]}.")
    d = widths.pop()
    protos = torch.zeros(len(per_class), int(k), d)
    counts = torch.zeros(len(per_class), dtype=torch.long)
    for cls, feats in enumerate(per_class):
        pos = feats.detach().float().cpu().numpy()  # (n_c, D)
        m = min(int(k), len(np.unique(pos, axis=0)) if len(pos) else 0)
        if m == 0:
            continue
        if m == 1:
            centres = pos.mean(axis=0, keepdims=True)  # (1, D)
        else:
            km = KMeans(n_clusters=m, n_init=3, random_state=int(seed)).fit(pos)
            centres = km.cluster_centers_  # (m, D)
        protos[cls, :m] = torch.from_numpy(np.asarray(centres, dtype=np.float32))
        counts[cls] = m
    return protos, counts


def compute_prototypes(features: torch.Tensor, targets: torch.Tensor, k: int = 10,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """PLRB's prototypes from the category features of a set of images.

    Args:
        features: ``(N, C, D)`` category features.
        targets: ``(N, C)`` partial labels in ``{1, 0, -1}``; only known positives count.
        k, seed: as :func:`prototypes_from_positives`.

    Returns:
        ``(prototypes (C, k, D), counts (C,))``, see :func:`prototypes_from_positives`.
    """
    targets = check_partial_labels(targets, "compute_prototypes: targets")
    if features.dim() != 3 or tuple(features.shape[:2]) != tuple(targets.shape):
        raise ValueError(f"compute_prototypes: features {tuple(features.shape)} must be "
                         f"(N, C, D) with (N, C) = targets' shape {tuple(targets.shape)}.")
    per_class = [features[targets[:, c] == 1, c] for c in range(targets.shape[1])]
    return prototypes_from_positives(per_class, k, seed)


# ------------------------------------------------------------------ models
def _blend_weight(learn: bool) -> nn.Parameter:
    return nn.Parameter(torch.zeros(()), requires_grad=bool(learn))  # sigmoid(0) = 0.5


class SARB(nn.Module):
    """SARB (Pu et al., AAAI 2022): CSRL + gated GNN classifier, with ILRB and PLRB.

    ``model(images, targets)`` in training (the blends need the partial labels:
    :func:`hmglib.engine.fit` passes them with ``pass_targets=True``), ``model(images)``
    at test time. Forward: backbone → optional 2 x 2 average pool → 1 x 1 conv
    ``C_b -> D`` + BatchNorm → :class:`SemanticDecoupling` → :class:`GatedGNN` →
    :class:`ClassOutput`. In training, with blending on (:meth:`set_blending`) and
    targets given, the ILRB and PLRB blends go through the same graph and output
    layer.

    Args:
        num_classes: ``C``.
        backbone: a backbone name (``"resnet101"`` is the paper's) or a module with
            ``.out_channels``.
        weights: the backbone's weights (see :func:`~hmglib.models.backbones.build_backbone`).
        embeddings: ``(C, E)`` fixed class embeddings (300-d GloVe vectors of the
            class names in the paper: :mod:`hmglib.data.embeddings`), or ``None`` to
            learn ``(C, embed_dim)`` embeddings.
        embed_dim: ``E`` of learned embeddings.
        adjacency: ``(C, C)`` conditional co-occurrence in ``[0, 1]`` of the partial
            training labels (:func:`~hmglib.data.empirical_cooccurrence`); ``None``
            starts with no edges (set it later with :meth:`set_adjacency`). The
            diagonal is ignored.
        feature_dim: ``D`` (1024 in the paper).
        hidden: the attention's width ``H`` (512).
        gnn_steps: propagation steps (3).
        pool: the paper's extra 2 x 2 average pool after the backbone.
        ilrb, plrb: the two blends (both off: the SSGRL-style baseline).
        learn_blend: learn ``alpha`` and ``beta`` (both start at 0.5); ``False`` keeps
            them at 0.5.
        num_prototypes: ``K`` per class (10).

    Attributes:
        alpha, beta: the blend weights in ``(0, 1)``.
        prototypes, prototype_counts: PLRB's prototypes ``(C, K, D)`` and how many
            of each class's rows hold one ``(C,)`` (buffers; the counts are -1 until
            :meth:`set_prototypes`, and PLRB refuses to blend before).
    """

    def __init__(self, num_classes: int, *, backbone: str | nn.Module = "resnet101",
                 weights: WeightsEnum | str | None = None,
                 embeddings: torch.Tensor | None = None, embed_dim: int = 300,
                 adjacency: torch.Tensor | None = None, feature_dim: int = 1024,
                 hidden: int = 512, gnn_steps: int = 3, pool: bool = True, ilrb: bool = True,
                 plrb: bool = True, learn_blend: bool = True, num_prototypes: int = 10) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"SARB: num_classes={num_classes} must be >= 1.")
        self.num_classes, self.num_prototypes = int(num_classes), int(num_prototypes)
        if self.num_prototypes < 1:
            raise ValueError(f"SARB: num_prototypes={num_prototypes} must be >= 1.")
        self.backbone, channels = resolve_backbone(backbone, weights)
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if pool else nn.Identity()
        self.reduce = nn.Sequential(nn.Conv2d(channels, feature_dim, 1, bias=False),
                                    nn.BatchNorm2d(feature_dim))
        if embeddings is None:
            self.embeddings = nn.Parameter(torch.randn(self.num_classes, int(embed_dim)))
        else:
            emb = torch.as_tensor(embeddings, dtype=torch.float32)
            if emb.dim() != 2 or emb.shape[0] != self.num_classes:
                raise ValueError(f"SARB: embeddings must be ({self.num_classes}, E), got shape "
                                 f"{tuple(emb.shape)}.")
            if not bool(torch.isfinite(emb).all()):
                raise ValueError("SARB: embeddings hold NaN or inf.")
            self.register_buffer("embeddings", emb.clone())
        self.csrl = SemanticDecoupling(feature_dim, self.embeddings.shape[1], hidden)
        self.gnn = GatedGNN(feature_dim, gnn_steps)
        self.head = ClassOutput(self.num_classes, feature_dim)
        self.register_buffer("adjacency", torch.zeros(self.num_classes, self.num_classes))
        if adjacency is not None:
            self.set_adjacency(adjacency)
        self.ilrb, self.plrb = bool(ilrb), bool(plrb)
        self.alpha_logit = _blend_weight(learn_blend)
        self.beta_logit = _blend_weight(learn_blend)
        self.register_buffer("prototypes", torch.zeros(self.num_classes, self.num_prototypes,
                                                       feature_dim))
        # -1: never computed (0: computed, and the class has no known positive)
        self.register_buffer("prototype_counts", torch.full((self.num_classes,), -1))
        self.blending = False
        #: draws the ILRB partners and the PLRB prototypes (``None``: the global
        #: generator); :func:`hmglib.blending.fit_sarb` keys it on its seed and the epoch.
        self.generator: torch.Generator | None = None

    # -------------------------------------------------------------- state
    @property
    def alpha(self) -> torch.Tensor:
        """ILRB's weight of the image's own feature, in ``(0, 1)``."""
        return torch.sigmoid(self.alpha_logit)

    @property
    def beta(self) -> torch.Tensor:
        """PLRB's weight of the image's own feature, in ``(0, 1)``."""
        return torch.sigmoid(self.beta_logit)

    def set_adjacency(self, adjacency: torch.Tensor) -> SARB:
        """Set the graph's ``(C, C)`` conditional co-occurrence (the diagonal is ignored)."""
        self.adjacency.copy_(_check_adjacency(adjacency, self.num_classes))
        return self

    def set_prototypes(self, prototypes: torch.Tensor, counts: torch.Tensor) -> SARB:
        """Set PLRB's prototypes ``(C, K, D)`` and their counts ``(C,)`` (from
        :func:`compute_prototypes`)."""
        if tuple(prototypes.shape) != tuple(self.prototypes.shape):
            raise ValueError(f"SARB.set_prototypes: prototypes {tuple(prototypes.shape)} must be "
                             f"{tuple(self.prototypes.shape)} (C, K, D).")
        counts = torch.as_tensor(counts, dtype=torch.long)
        if tuple(counts.shape) != (self.num_classes,) or bool((counts < 0).any()) or bool(
                (counts > self.num_prototypes).any()):
            raise ValueError(f"SARB.set_prototypes: counts must be ({self.num_classes},) in "
                             f"0..{self.num_prototypes}.")
        self.prototypes.copy_(prototypes)
        self.prototype_counts.copy_(counts)
        return self

    def set_blending(self, on: bool) -> SARB:
        """Switch the blends on or off (the paper starts them at epoch 5)."""
        self.blending = bool(on)
        return self

    # -------------------------------------------------------------- forward
    def category_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` ``(B, 3, H, W)`` → ``(features (B, C, D), attention (B, C, h, w))``."""
        fmap = self.reduce(self.pool(self.backbone(images)))  # (B, D, h, w)
        return self.csrl(fmap, self.embeddings)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Category features ``(B, C, D)`` → logits ``(B, C)`` (graph + output layer)."""
        return self.head(self.gnn(features, self.adjacency), features)

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None,
                ) -> MultiLabelOutput:
        """``images`` ``(B, 3, H, W)``, optional partial ``targets`` ``(B, C)`` in
        ``{1, 0, -1}`` (used only in training with blending on) → :class:`MultiLabelOutput`."""
        features, attention = self.category_features(images)
        out = MultiLabelOutput(self.classify(features), features, attention)
        if not (self.training and self.blending and targets is not None):
            return out
        targets = check_partial_labels(targets, "SARB: targets",
                                       (features.shape[0], self.num_classes))
        if self.ilrb and features.shape[0] >= 2:
            partners = blend_partners(features.shape[0], self.generator, device=features.device)
            blended, soft, mask = instance_blend(features, targets, self.alpha, partners)
            rows = mask.any(dim=1)  # (B,): images that received a blend
            out.instance_logits = self.classify(blended[rows])  # (B', C)
            out.instance_targets = soft[rows]  # (B', C)
        if self.plrb:
            if bool((self.prototype_counts < 0).any()):
                raise ValueError("SARB: PLRB is on but no prototypes are set; call "
                                 "set_prototypes(*compute_prototypes(...)) first (fit_sarb "
                                 "does at the start of blending), or build with plrb=False.")
            blended, soft, mask = prototype_blend(features, targets, self.prototypes,
                                                  self.prototype_counts, self.beta,
                                                  self.generator)
            rows = mask.any(dim=1)  # (B,)
            out.prototype_logits = self.classify(blended[rows])  # (B', C)
            out.prototype_targets = soft[rows]  # (B', C)
        return out

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, ilrb={self.ilrb}, plrb={self.plrb}, "
                f"num_prototypes={self.num_prototypes}")


class LinearMultiLabel(nn.Module):
    """The plain baseline: backbone → global average pool → one linear layer.

    Args:
        num_classes: ``C``.
        backbone, weights: as :class:`SARB`'s.
    """

    def __init__(self, num_classes: int, *, backbone: str | nn.Module = "resnet101",
                 weights: WeightsEnum | str | None = None) -> None:
        super().__init__()
        self.backbone, channels = resolve_backbone(backbone, weights)
        self.fc = nn.Linear(channels, int(num_classes))

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None,
                ) -> MultiLabelOutput:
        """``images`` ``(B, 3, H, W)`` → :class:`MultiLabelOutput` with logits ``(B, C)``
        (``targets`` is accepted and ignored, so every multi-label model trains alike)."""
        pooled = self.backbone(images).mean(dim=(2, 3))  # (B, C_b)
        return MultiLabelOutput(self.fc(pooled))  # (B, C)


# ------------------------------------------------------------------ builders
def _classes(tree: LabelTree) -> int:
    return int(tree.level_sizes[-1])


def sarb(tree: LabelTree, *, backbone: str | nn.Module, weights: WeightsEnum | str | None = None,
         embeddings: torch.Tensor | None = None, embed_dim: int = 300,
         adjacency: torch.Tensor | None = None, feature_dim: int = 1024, hidden: int = 512,
         gnn_steps: int = 3, pool: bool = True, ilrb: bool = True, plrb: bool = True,
         learn_blend: bool = True, num_prototypes: int = 10) -> SARB:
    """A :class:`SARB` over the classes of ``tree`` (its last level, e.g.
    ``LabelTree.flat(class_names)``), as ``get_model("sarb", tree, ...)`` builds it."""
    return SARB(_classes(tree), backbone=backbone, weights=weights, embeddings=embeddings,
                embed_dim=embed_dim, adjacency=adjacency, feature_dim=feature_dim,
                hidden=hidden, gnn_steps=gnn_steps, pool=pool, ilrb=ilrb, plrb=plrb,
                learn_blend=learn_blend, num_prototypes=num_prototypes)


def ssgrl(tree: LabelTree, *, backbone: str | nn.Module, weights: WeightsEnum | str | None = None,
          embeddings: torch.Tensor | None = None, embed_dim: int = 300,
          adjacency: torch.Tensor | None = None, feature_dim: int = 1024, hidden: int = 512,
          gnn_steps: int = 3, pool: bool = True) -> SARB:
    """The SSGRL-style baseline: SARB's CSRL and graph without blending
    (``get_model("ssgrl", tree, ...)``)."""
    return SARB(_classes(tree), backbone=backbone, weights=weights, embeddings=embeddings,
                embed_dim=embed_dim, adjacency=adjacency, feature_dim=feature_dim,
                hidden=hidden, gnn_steps=gnn_steps, pool=pool, ilrb=False, plrb=False)


def linear_multilabel(tree: LabelTree, *, backbone: str | nn.Module,
                      weights: WeightsEnum | str | None = None) -> LinearMultiLabel:
    """The linear baseline over the classes of ``tree`` (``get_model("linear", tree, ...)``)."""
    return LinearMultiLabel(_classes(tree), backbone=backbone, weights=weights)
