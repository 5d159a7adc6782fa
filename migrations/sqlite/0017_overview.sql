-- The portal's overview (issue 14): counted with aggregate queries, never by loading rows.
-- An offer's link is not personal (any number of customers use it), so "opened" is recorded
-- per offer: the first time its page was shown (one row per offer, written once).
CREATE TABLE offer_opens (
    offer_id  TEXT PRIMARY KEY,
    opened_at INTEGER NOT NULL
);
CREATE INDEX offer_opens_at ON offer_opens (opened_at, offer_id);
-- The funnel's ranges: emails sent per template and time, confirmed acceptances by time,
-- campaign messages by time, finished lifecycles by workflow, state and time; offers by
-- location (the location filter starts there).
CREATE INDEX emails_template_sent ON emails (template, sent_at);
CREATE INDEX acceptances_confirmed_at ON acceptances (confirmed_at);
CREATE INDEX campaign_recipients_sent ON campaign_recipients (sent_at, campaign_id, state);
CREATE INDEX instances_workflow_state_final ON instances (workflow, state, final_at);
CREATE INDEX offers_location_kind ON offers (location_id, kind);
