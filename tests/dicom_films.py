"""Synthetic DICOM chest films for the import tests, optionally carrying identifiers in every header field
that DICOM's de-identification profile (PS3.15 Table E.1-1) lists and a radiograph may hold."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
# Text attributes of Table E.1-1 (the basic profile's identifying ones) by keyword; each test film gets a
# marker value unique to the film and the attribute, so a leak names where it came from.
TEXT_PHI = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "MedicalRecordLocator",
    "MilitaryRank", "BranchOfService", "Occupation", "EthnicGroup", "RegionOfResidence",
    "CountryOfResidence", "AdditionalPatientHistory", "PatientComments", "IssuerOfPatientID",
    "AccessionNumber", "StudyID", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician",
    "StationName", "DeviceSerialNumber", "ProtocolName", "StudyDescription", "SeriesDescription",
    "ImageComments", "DerivationDescription", "RequestedProcedureDescription", "ResponsiblePerson",
    "ResponsibleOrganization", "PatientState", "CurrentPatientLocation", "AdmittingDiagnosesDescription",
)
DATE_PHI = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")


def phi_marker(index: int, keyword: str) -> str:
    """The marker film `index` carries in text attribute `keyword` (16 characters at most: an SH fits)."""
    return f"PHI{index:02d}{TEXT_PHI.index(keyword):03d}ZQX"


def phi_date(index: int, keyword: str) -> str:
    """The marker date (YYYYMMDD, all before 1930) film `index` carries in `keyword`."""
    return f"19{10 + index:02d}0{1 + DATE_PHI.index(keyword)}{10 + index:02d}"


def chest_film(
    index: int,
    *,
    patient_id: str,
    study_uid: str | None = None,
    modality: str = "DX",
    body_part: str = "CHEST",
    view: str = "PA",
    photometric: str = "MONOCHROME2",
    size: int = 96,
    phi: bool = False,
    burned_in: bool = False,
) -> tuple[bytes, FileDataset]:
    """A Part 10 file of a 12-bit film (each index its own picture) and its dataset."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_STORAGE if modality == "DX" else CR_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = modality, body_part, view
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    if phi:
        for keyword in TEXT_PHI:
            setattr(ds, keyword, phi_marker(index, keyword))
        for keyword in DATE_PHI:
            setattr(ds, keyword, phi_date(index, keyword))
        ds.PatientID = patient_id  # the test's own id, which it also looks for
    yy, xx = np.mgrid[0:size, 0:size] / size
    smooth = 0.3 + 0.6 * np.sin(np.pi * (xx * (1 + index % 5) + yy)) ** 2
    grain = np.random.default_rng(index).normal(0, 0.02, (size, size))  # no two films alike
    pixels = (4095 * np.clip(smooth + grain, 0, 1)).astype(np.uint16)
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue(), ds
