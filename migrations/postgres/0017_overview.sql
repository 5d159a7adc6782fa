-- The portal's overview (issue 14): counted with aggregate queries, never by loading rows.
-- An offer's link is not personal (any number of customers use it), so "opened" is recorded
-- per offer: the first time its page was shown (one row per offer, written once), with the
-- offer's kind and location so that the funnel counts it from this index alone.
CREATE TABLE offer_opens (
    offer_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    location_id TEXT NOT NULL,
    opened_at   BIGINT NOT NULL
);
CREATE INDEX offer_opens_at ON offer_opens (opened_at, kind, location_id);
-- The funnel's ranges, each an index the count reads alone: invitation emails sent per
-- template and time; with a location, its offers → their invitations → their emails;
-- confirmed acceptances by time; campaign messages by time; finished lifecycles by workflow,
-- state and time; an offer's kind and location by its ID.
CREATE INDEX emails_template_sent ON emails (template, sent_at);
CREATE INDEX emails_instance_template_sent ON emails (instance_id, template, sent_at);
CREATE INDEX invitations_offer_instance ON invitations (offer_id, instance_id);
CREATE INDEX offers_location_kind ON offers (location_id, kind, offer_id);
CREATE INDEX offers_id_kind_location ON offers (offer_id, kind, location_id);
CREATE INDEX acceptances_confirmed_at ON acceptances (confirmed_at, offer_id);
CREATE INDEX acceptances_instance_offer ON acceptances (instance_id, offer_id);
CREATE INDEX campaign_recipients_sent ON campaign_recipients (sent_at, campaign_id, state) WHERE sent_at IS NOT NULL;
CREATE INDEX instances_workflow_state_final ON instances (workflow, state, final_at);
-- The next ends of delegated-admin relationships: their scheduled `end` timers in time order.
CREATE INDEX jobs_relationship_ends ON jobs (run_at) WHERE state = 'scheduled' AND key LIKE 'timer:%:end';
