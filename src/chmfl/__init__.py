"""chmfl: distant-metastasis prediction for soft-tissue sarcoma from PET-CT.

Implements CHMFL (Peng et al., constrained hierarchical multi-modality feature learning)
and every method that paper compares with. Stages, in data-flow order:
io -> cohort -> preprocess -> data -> models / radiomics -> methods -> cv -> stats -> report,
with predict (new patients) and cli on top. See docs/architecture.md.
"""

__version__ = "0.1.0"
