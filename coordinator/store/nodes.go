package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Node is a tailnet node's durable record. Keys are stored in their text
// forms (mkey:..., nodekey:..., discokey:...).
type Node struct {
	ID         int64
	StableID   string
	UserID     int64 // owner: the user, or the workspace owner for an agent node
	AgentID    int64 // 0 for a user's own device
	MachineKey string
	NodeKey    string
	DiscoKey   string
	IPv4       string
	IPv6       string
	Hostname   string
	GivenName  string
	Hostinfo   string // JSON tailcfg.Hostinfo
	Endpoints  string // JSON []netip.AddrPort
	HomeDERP   int
	Ephemeral  bool
	CapVersion int
	KeyExpiry  time.Time // zero: never
	CreatedAt  time.Time
	LastSeen   time.Time
}

const nodeCols = `id, stable_id, user_id, COALESCE(agent_id, 0), machine_key, node_key, disco_key, ipv4, ipv6,
	hostname, given_name, hostinfo, endpoints, home_derp, ephemeral, cap_version, key_expiry, created_at, last_seen`

func scanNode(row rowScanner) (Node, error) {
	var n Node
	var eph int
	var ke, c, ls int64
	err := row.Scan(&n.ID, &n.StableID, &n.UserID, &n.AgentID, &n.MachineKey, &n.NodeKey, &n.DiscoKey,
		&n.IPv4, &n.IPv6, &n.Hostname, &n.GivenName, &n.Hostinfo, &n.Endpoints, &n.HomeDERP,
		&eph, &n.CapVersion, &ke, &c, &ls)
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, ErrNotFound
	}
	n.Ephemeral = eph != 0
	n.KeyExpiry, n.CreatedAt, n.LastSeen = fromMillis(ke), fromMillis(c), fromMillis(ls)
	return n, err
}

// AddressAllocator proposes a fresh (IPv4, IPv6) pair; CreateNode retries
// with a new proposal when one is taken.
type AddressAllocator func() (ipv4, ipv6 string)

// CreateNode inserts n with addresses from alloc (ID, StableID and
// addresses are filled in). If authKeyHash is non-empty the auth key is
// validated and consumed in the same transaction, and the node takes its
// owner and ephemeral flag from the key; the key is returned.
func (s *Store) CreateNode(ctx context.Context, n Node, authKeyHash string, alloc AddressAllocator) (Node, AuthKey, error) {
	var out Node
	var ak AuthKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		if authKeyHash != "" {
			var err error
			ak, err = scanAuthKey(tx.QueryRowContext(ctx, `SELECT `+authKeyCols+` FROM auth_keys WHERE secret_hash = ?`, authKeyHash))
			if errors.Is(err, ErrNotFound) {
				return ErrAuthKeyUnknown
			}
			if err != nil {
				return err
			}
			if err := usableAuthKey(ctx, tx, ak, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE auth_keys SET used_at = ? WHERE id = ?`, toMillis(now), ak.ID); err != nil {
				return err
			}
			n.UserID, n.AgentID = ak.UserID, ak.AgentID
			n.Ephemeral = n.Ephemeral || ak.Ephemeral
		}
		// Whatever the path (auth key or interactive login), a disabled
		// user gets no new node: this closes the race with disabling.
		if disabled, err := userDisabled(ctx, tx, n.UserID); err != nil {
			return err
		} else if disabled {
			return fmt.Errorf("node owner %d: %w", n.UserID, ErrUserDisabled)
		}
		var err error
		out, err = insertNode(ctx, tx, n, alloc)
		return err
	})
	return out, ak, err
}

func insertNode(ctx context.Context, tx *sql.Tx, n Node, alloc AddressAllocator) (Node, error) {
	var agent any
	if n.AgentID != 0 {
		agent = n.AgentID
	}
	for attempt := 0; attempt < 20; attempt++ {
		v4, v6 := alloc()
		// Savepoint so a unique violation on an address does not abort
		// the surrounding transaction on PostgreSQL.
		if _, err := tx.ExecContext(ctx, `SAVEPOINT alloc`); err != nil {
			return Node{}, err
		}
		row := tx.QueryRowContext(ctx, `INSERT INTO nodes (stable_id, user_id, agent_id, machine_key, node_key,
			disco_key, ipv4, ipv6, hostname, given_name, hostinfo, endpoints, home_derp, ephemeral, cap_version,
			key_expiry, created_at, last_seen)
			VALUES ('pending-' || ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			n.NodeKey, n.UserID, agent, n.MachineKey, n.NodeKey, n.DiscoKey, v4, v6, n.Hostname, n.GivenName,
			orDefault(n.Hostinfo, "{}"), orDefault(n.Endpoints, "[]"), n.HomeDERP, boolInt(n.Ephemeral),
			n.CapVersion, toMillis(n.KeyExpiry), nowMillis(), toMillis(n.LastSeen))
		var id int64
		err := row.Scan(&id)
		if err != nil {
			if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT alloc`); rbErr != nil {
				return Node{}, rbErr
			}
			if isUniqueViolation(err) && isAddressConflict(err) {
				continue
			}
			if isUniqueViolation(err) {
				return Node{}, fmt.Errorf("node key: %w", ErrConflict)
			}
			return Node{}, err
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT alloc`); err != nil {
			return Node{}, err
		}
		stable := fmt.Sprintf("n%08d", id)
		if _, err := tx.ExecContext(ctx, `UPDATE nodes SET stable_id = ? WHERE id = ?`, stable, id); err != nil {
			return Node{}, err
		}
		return scanNode(tx.QueryRowContext(ctx, `SELECT `+nodeCols+` FROM nodes WHERE id = ?`, id))
	}
	return Node{}, errors.New("could not allocate a free tailnet address")
}

func isAddressConflict(err error) bool {
	msg := err.Error()
	for _, col := range []string{"nodes.ipv4", "nodes.ipv6", "nodes_ipv4_key", "nodes_ipv6_key"} {
		if strings.Contains(msg, col) {
			return true
		}
	}
	return false
}

// NodeByKey returns the node with that node key.
func (s *Store) NodeByKey(ctx context.Context, nodeKey string) (Node, error) {
	return scanNode(s.db.QueryRowContext(ctx, `SELECT `+nodeCols+` FROM nodes WHERE node_key = ?`, nodeKey))
}

// NodeByID returns the node with that ID.
func (s *Store) NodeByID(ctx context.Context, id int64) (Node, error) {
	return scanNode(s.db.QueryRowContext(ctx, `SELECT `+nodeCols+` FROM nodes WHERE id = ?`, id))
}

// ListNodes returns every node ordered by ID (loaded once at start).
func (s *Store) ListNodes(ctx context.Context) ([]Node, error) {
	return s.queryNodes(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY id`)
}

// ListUserNodes returns a user's nodes ordered by ID.
func (s *Store) ListUserNodes(ctx context.Context, userID int64) ([]Node, error) {
	return s.queryNodes(ctx, `SELECT `+nodeCols+` FROM nodes WHERE user_id = ? ORDER BY id`, userID)
}

func (s *Store) queryNodes(ctx context.Context, q string, args ...any) ([]Node, error) {
	return queryAll(ctx, s.db, scanNode, q, args...)
}

// UpdateNodeState stores the fields a node reports in map requests.
func (s *Store) UpdateNodeState(ctx context.Context, n Node) error {
	res, err := s.db.ExecContext(ctx, `UPDATE nodes SET disco_key = ?, hostname = ?, hostinfo = ?, endpoints = ?,
		home_derp = ?, cap_version = ?, last_seen = ? WHERE id = ?`,
		n.DiscoKey, n.Hostname, orDefault(n.Hostinfo, "{}"), orDefault(n.Endpoints, "[]"), n.HomeDERP,
		n.CapVersion, toMillis(n.LastSeen), n.ID)
	return affectedOne(res, err)
}

// SetNodeKey rotates a node's key and sets its new expiry.
func (s *Store) SetNodeKey(ctx context.Context, id int64, nodeKey string, expiry time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE nodes SET node_key = ?, key_expiry = ? WHERE id = ?`, nodeKey, toMillis(expiry), id)
	if isUniqueViolation(err) {
		return fmt.Errorf("node key: %w", ErrConflict)
	}
	return affectedOne(res, err)
}

// SetNodeExpiry sets a node's key expiry (logout sets it to now).
func (s *Store) SetNodeExpiry(ctx context.Context, id int64, expiry time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE nodes SET key_expiry = ? WHERE id = ?`, toMillis(expiry), id)
	return affectedOne(res, err)
}

// SetNodeOwner moves a node to a user (interactive login approves a node).
func (s *Store) SetNodeOwner(ctx context.Context, id, userID int64, expiry time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE nodes SET user_id = ?, agent_id = NULL, key_expiry = ? WHERE id = ?`, userID, toMillis(expiry), id)
	return affectedOne(res, err)
}

// DeleteNode removes a node.
func (s *Store) DeleteNode(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM nodes WHERE id = ?`, id)
	return affectedOne(res, err)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
