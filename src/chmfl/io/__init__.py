"""The io stage: DICOM series, RTSTRUCT, NIfTI/NRRD/MHA in; NIfTI and DICOM SEG out.

Modules (imported where used, to keep ``import chmfl`` light): ``volume`` (the Volume
contract), ``imageio`` (read_image / write_image), ``dicom`` (scan_dicom_folder,
read_dicom_series), ``suv`` and ``decay`` (PET to SUV), ``rtstruct`` (masks),
``seg`` (DICOM SEG), ``convert`` (what ``chmfl convert`` runs). See docs/io.md.
"""
