"""Finding patients: folder layouts (IBSI, TCIA DICOM, nnU-Net), the clinical sheet and the
DM label rules, ``Case`` records (paths and labels, never pixels), and ``fetch`` of the
public STS cohort. See docs/data.md."""
