-- The portal's offers section: the list filtered by who created the offers (newest first),
-- the campaigns that carried an offer, and the bounces of an invitation's emails.
CREATE INDEX offers_created_by ON offers (created_by, created_at);
CREATE INDEX campaigns_offer ON campaigns (offer_id);
CREATE INDEX bounces_message ON bounces (message_id);
