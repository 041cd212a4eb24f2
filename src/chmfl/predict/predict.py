"""Predicting new patients with a saved model: DM probability and tumour mask, no contour needed.

The patient is prepared exactly as the model's training patients were (the model folder holds
that preprocessing config). The box is centred on the contour when one is given, on
``--center``, or else where ``preprocess.localise.locate_tumour`` finds the tumour (inside
``--search-box`` when given); when it cannot tell the tumour apart, or the box would be
mostly outside the CT, the patient is refused (``ChmflError`` listing the candidates) rather
than given a probability. The predicted mask is resampled from the box back onto the
original CT grid (linear interpolation of the binary mask, threshold 0.5) so it overlays the
CT voxel for voxel. Outputs carry the patient ID only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from chmfl import __version__
from chmfl.data.cases import CaseData
from chmfl.errors import ChmflError
from chmfl.fsutil import atomic_dir
from chmfl.io.imageio import read_image, write_image
from chmfl.io.validate import check_distinct, check_pair, read_as
from chmfl.io.volume import Volume
from chmfl.preprocess.cache_format import CaseArrays
from chmfl.preprocess.config import PrepareConfig
from chmfl.preprocess.localise import LocalisationRefused, SearchBox
from chmfl.preprocess.pipeline import preprocess_case

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatientInput:
    """One new patient: image paths (DICOM folders or image files) and an optional contour/centre."""

    patient_id: str | None
    ct: Path
    pet: Path | None  # None: a CT-only model (2D slices)
    rtstruct: Path | None = None
    roi: str | None = None
    center: tuple[float, float, float] | None = None
    mask_image: Path | None = None  # a label image (NIfTI/NRRD) instead of an RTSTRUCT
    contour_if_needed: bool = False  # use the contour only for methods that cannot do without
    search_box: SearchBox | None = None  # XMIN XMAX YMIN YMAX ZMIN ZMAX (LPS mm) to look for the tumour in
    labels: tuple[str, str] = ("--ct", "--pet")  # how errors name the CT and the PET

    def where(self, modality: str) -> str:
        """The input as an error message names it, e.g. "--ct /data/ct"."""
        label = self.labels[0] if modality == "ct" else self.labels[1]
        return f"{label} {self.ct if modality == 'ct' else self.pet}"


HOW_TO_CHOOSE = ("choose the centre with --center X Y Z (LPS mm) or limit the search with "
                 "--search-box XMIN XMAX YMIN YMAX ZMIN ZMAX (LPS mm)")


def model_folder(path: str | Path) -> Path:
    """The model folder ``path`` names: itself, or the ``model/`` inside a ``chmfl train --out``
    folder given instead (what ``chmfl train`` prints is ``OUT/model``; ``OUT`` works too)."""
    path = Path(path)
    if not path.exists():
        raise ChmflError(f"--model {path}: no such folder")
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        log.info("--model %s: using the model it holds, %s", path, path / "model")
        return path / "model"
    return path


class Predictor:
    """A saved model plus its preprocessing, ready for new patients."""

    def __init__(self, model_dir: str | Path) -> None:
        from chmfl.methods.neural import read_model_config
        from chmfl.methods.registry import load_method

        self.model_dir = model_folder(model_dir)
        cfg = read_model_config(self.model_dir)
        prep = cfg.get("preprocess")
        if not prep or "config" not in prep:
            raise ChmflError(f"{model_dir}: the model holds no preprocessing config (train it with 'chmfl train')")
        from chmfl.preprocess.slices import SliceConfig, is_slice_cache

        self.slices = SliceConfig.from_dict(prep["config"]) if is_slice_cache(prep) else None
        self.prepare = None if self.slices else PrepareConfig.from_dict(prep["config"])
        self.method = load_method(self.model_dir)
        self.name = cfg["method"]

    def _needs_contour(self) -> bool:
        """The method's own declaration (``Method.needs_contour``), as cross-validation reads it."""
        return self.method.needs_contour() is not None

    def slice_patient(self, p: PatientInput) -> CaseArrays:
        """A one-slice patient (model trained on a 2D slice cohort), read as the training
        slices were; a mask image, if given, is its tumour mask."""
        from chmfl.cohort.case import Case, MaskSource
        from chmfl.preprocess.slices import slice_case_arrays

        pid = p.patient_id or Path(p.ct).name.split(".")[0]
        masks = (MaskSource(Path(p.mask_image), "labelmap", "ct"),) if p.mask_image else ()
        return slice_case_arrays(Case(str(pid), Path(p.ct), None, masks, "slices"), self.slices)

    def prepare_patient(self, p: PatientInput) -> tuple[CaseArrays, Volume]:
        if p.pet is None:
            raise ChmflError(f"model {self.name} works on PET-CT: give --pet")
        ct_where, pet_where = p.where("ct"), p.where("pet")
        check_distinct(p.ct, p.pet, ct_where, pet_where)
        ct = read_as(p.ct, "ct", ct_where)
        pet = read_as(p.pet, "pet", pet_where, suv=self.prepare.suv)
        check_pair(ct, pet, ct_where, pet_where)
        mask = None
        if p.contour_if_needed and not self._needs_contour():
            p = PatientInput(p.patient_id, p.ct, p.pet, center=p.center, search_box=p.search_box, labels=p.labels)
        if p.rtstruct is not None:
            from chmfl.io.rtstruct import read_rtstruct_mask

            mask = read_rtstruct_mask(p.rtstruct, ct, roi=p.roi)
        elif p.mask_image is not None:
            label = read_image(p.mask_image)
            mask = label.with_array((label.array > 0).astype("uint8"))
        elif self._needs_contour():
            raise ChmflError(f"method {self.name} needs a tumour contour: give --rtstruct or --mask")
        pid = str(p.patient_id or ct.meta.get("patient_id") or Path(p.ct).name.split(".")[0])
        try:
            arrays = preprocess_case(pid, ct, pet, mask, self.prepare, center_xyz=p.center, search_box=p.search_box)
        except LocalisationRefused as exc:
            raise LocalisationRefused(f"{exc}; {HOW_TO_CHOOSE}", exc.localisation) from None
        outside = arrays.meta["pad_fraction_ct"]
        if outside > self.prepare.hotspot.max_outside_ct:
            x, y, z = arrays.center
            raise LocalisationRefused(f"patient {pid}: the box around ({x:.0f}, {y:.0f}, {z:.0f}) mm lies "
                                      f"{outside:.0%} outside the CT, no prediction is made on padding; {HOW_TO_CHOOSE}")
        return arrays, ct

    def _scores(self, case: CaseData, out: dict) -> dict:
        """P(DM) of a classifier; the risk score and DM-free probabilities at 1, 2, 3 years
        from the PET scan of a survival model (where it predicts them)."""
        if "risk" not in out:
            return {"probability": float(out["probability"][0])}
        from chmfl.stats.survival import HORIZONS_DAYS

        scores = {"risk": float(out["risk"][0]), "endpoint": "dm-free-survival"}
        if "predict_survival" in self.method.capabilities:
            s = self.method.predict_survival([case], list(HORIZONS_DAYS))[0]
            scores["dm_free_probability"] = {f"{d}d": float(v) for d, v in zip(HORIZONS_DAYS, s)}
        return scores

    def predict(self, p: PatientInput) -> tuple[dict, Volume | None, Volume]:
        """(prediction record, predicted mask on the CT grid or None, the CT volume or None)."""
        if self.slices is not None:
            arrays, ct = self.slice_patient(p), None
        else:
            arrays, ct = self.prepare_patient(p)
        case = CaseData(arrays.patient_id, None, arrays=arrays)
        out = self.method.predict_all([case], saliency=False)  # "risk" for a survival model
        record = {
            "patient_id": arrays.patient_id,
            **self._scores(case, out),
            "model": {"method": self.name, "path": str(self.model_dir.resolve()), "chmfl_version": __version__},
            "preprocessing": {
                "config": (self.slices or self.prepare).to_dict(), "center_xyz_mm": list(arrays.center),
                "center_method": arrays.meta.get("center_method"),
                "pad_fraction_ct": arrays.meta.get("pad_fraction_ct"),
                "localisation": arrays.meta.get("localisation"),
            },
        }
        mask = None
        if "mask" in out and ct is not None:
            mask = box_mask_to_grid(arrays.volume("ct").with_array(out["mask"][0]), ct)
            record["tumour_volume_ml"] = float(mask.array.sum() * np.prod(ct.spacing) / 1000.0)
        return record, mask, ct


def box_mask_to_grid(box_mask: Volume, reference: Volume) -> Volume:
    """Resample a binary box mask onto ``reference``'s grid without shifting it."""
    ref = sitk.Image(*reference.shape[::-1], sitk.sitkUInt8)
    ref.SetSpacing(reference.spacing[::-1])
    ref.SetOrigin(reference.origin)
    ref.SetDirection(reference.direction)
    src = Volume(box_mask.array.astype(np.float32), box_mask.spacing, box_mask.origin, box_mask.direction)
    res = sitk.Resample(src.to_sitk(), ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    arr = (sitk.GetArrayFromImage(res) >= 0.5).astype(np.uint8)
    return Volume(arr, reference.spacing, reference.origin, reference.direction)


def write_prediction(out_dir: Path, record: dict, mask: Volume | None, ct_path: Path) -> None:
    """prediction.json, mask.nii.gz and (for a DICOM CT) mask_seg.dcm in ``out_dir``."""
    if mask is not None:
        write_image(mask, out_dir / "mask.nii.gz")
        record["mask"] = "mask.nii.gz"
        if Path(ct_path).is_dir():
            from chmfl.io.seg import write_dicom_seg

            if mask.array.any():
                write_dicom_seg(mask, ct_path, out_dir / "mask_seg.dcm", label="Tumour", algorithm=f"chmfl {record['model']['method']}")
                record["dicom_seg"] = "mask_seg.dcm"
            else:
                record["dicom_seg"] = None
                log.warning("%s: empty predicted mask, no DICOM SEG written", record["patient_id"])
    (out_dir / "prediction.json").write_text(json.dumps(record, indent=2))


def _refusal(p: PatientInput, exc: LocalisationRefused) -> dict:
    """The record of a refused patient of a cohort: why, and the candidates."""
    pid = p.patient_id or Path(p.ct).name.split(".")[0]
    loc = exc.localisation
    return {"patient_id": str(pid), "probability": None, "refused": str(exc),
            "localisation": None if loc is None else loc.to_dict()}


def predict_patients(model_dir: str | Path, patients: list[PatientInput], out: str | Path) -> Path:
    """Predict each patient; one patient -> files in ``out``; several -> ``out/<id>/`` + predictions.csv.

    One patient whose tumour cannot be placed raises (nothing is written). In a cohort, such
    a patient gets a prediction.json saying why (no probability) and a "refused" row."""
    import pandas as pd
    from tqdm.auto import tqdm

    if not patients:
        raise ChmflError("no patients to predict")
    predictor = Predictor(model_dir)
    out = Path(out)
    with atomic_dir(out) as tmp:
        rows = []
        for p in tqdm(patients, desc="patients", disable=len(patients) < 2):
            try:
                record, mask, _ = predictor.predict(p)
            except LocalisationRefused as exc:
                if len(patients) == 1:
                    raise
                record, mask = _refusal(p, exc), None
                log.warning("%s", record["refused"])
            target = tmp if len(patients) == 1 else tmp / record["patient_id"]
            target.mkdir(parents=True, exist_ok=True)
            if "refused" in record:
                (target / "prediction.json").write_text(json.dumps(record, indent=2))
            else:
                write_prediction(target, record, mask, p.ct)
            scores = {k: record[k] for k in ("probability", "risk") if k in record}
            scores.update({f"dm_free_{k}": v for k, v in record.get("dm_free_probability", {}).items()})
            rows.append({"patient_id": record["patient_id"], **scores, "model": predictor.name,
                         "center_method": record.get("preprocessing", {}).get("center_method"),
                         "status": "refused" if "refused" in record else "ok"})
        if len(patients) > 1:
            pd.DataFrame(rows).to_csv(tmp / "predictions.csv", index=False)
    return out
