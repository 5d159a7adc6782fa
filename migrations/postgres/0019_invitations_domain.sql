-- The portal's customer search and customer page find invitations by the recipient's domain
-- (exact): an index on the domain part, so the query does not read every invitation. The
-- store's query uses the same expression (`store::offers::invitations_for`).
CREATE INDEX invitations_domain ON invitations (lower(split_part(recipient, '@', 2)));
