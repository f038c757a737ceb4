-- How long the lead had been in the stage it left: time in stage for reports, exact even when a late event re-decides history.
ALTER TABLE stage_transitions ADD in_stage_seconds FLOAT NULL;
