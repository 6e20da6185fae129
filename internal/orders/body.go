package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ordersys/ecosystem/internal/domain"
)

// orderBody is the POST body with every field optional, to name the missing ones.
type orderBody struct {
	ID         *string            `json:"id"`
	CustomerID *int64             `json:"customerId"`
	State      *domain.OrderState `json:"state"`
	Product    *domain.Product    `json:"product"`
	Quantity   *int32             `json:"quantity"`
	Price      *float64           `json:"price"`
}

// decodeOrder reads and checks a POST body before anything is written.
func decodeOrder(body io.Reader, limit int64) (domain.Order, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return domain.Order{}, jsonError(err, limit)
	}
	// encoding/json replaces invalid UTF-8 with U+FFFD, so two different ids would become
	// one, and matches field names without regard to case, so {"id":"a","ID":"b"} would be
	// order b: both are refused before decoding.
	if !utf8.Valid(raw) {
		return domain.Order{}, badRequest("body", "is not valid UTF-8")
	}
	if err := exactFieldNames(raw); err != nil {
		return domain.Order{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b orderBody
	if err := dec.Decode(&b); err != nil {
		return domain.Order{}, jsonError(err, limit)
	}
	if dec.More() {
		return domain.Order{}, badRequest("body", "must hold exactly one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Order{}, badRequest("body", "unexpected data after the JSON object")
	}
	missing := func(field string) error { return badRequest(field, "is required") }
	switch {
	case b.ID == nil || *b.ID == "":
		return domain.Order{}, missing("id")
	case b.CustomerID == nil:
		return domain.Order{}, missing("customerId")
	case b.Product == nil:
		return domain.Order{}, missing("product")
	case b.Quantity == nil:
		return domain.Order{}, missing("quantity")
	case b.Price == nil:
		return domain.Order{}, missing("price")
	}
	o := domain.Order{ID: *b.ID, CustomerID: *b.CustomerID, State: domain.OrderCreated, Product: *b.Product, Quantity: *b.Quantity, Price: *b.Price}
	if b.State != nil {
		o.State = *b.State
	}
	if err := o.Validate(); err != nil {
		return domain.Order{}, err
	}
	if o.State != domain.OrderCreated {
		return domain.Order{}, badRequest("state", fmt.Sprintf("a new order must be CREATED, got %s", o.State))
	}
	if strings.ContainsRune(o.ID, utf8.RuneError) {
		// What an unpaired surrogate escape (\ud800) decodes to: ids differing only there
		// would collide.
		return domain.Order{}, badRequest("id", "must not contain U+FFFD or an unpaired surrogate escape")
	}
	if o.ID == "." || o.ID == ".." {
		// A client resolving Location /v1/orders/.. (RFC 3986 dot segments) lands elsewhere.
		return domain.Order{}, badRequest("id", "must not be a dot segment")
	}
	// Characters, as the OpenAPI document's maxLength counts them (a 200-character id in
	// Cyrillic is 400 bytes).
	if strings.ContainsAny(o.ID, "/?#") || utf8.RuneCountInString(o.ID) > 256 {
		return domain.Order{}, badRequest("id", "must be at most 256 characters without '/', '?' or '#'")
	}
	return o, nil
}

// orderFields are the POST body's field names, spelled exactly.
var orderFields = map[string]bool{"id": true, "customerId": true, "state": true, "product": true, "quantity": true, "price": true}

// exactFieldNames refuses a top-level object whose keys are not exactly the order's field
// names, or name one twice. Anything that is not such an object is left to the decoder, which
// names the problem.
func exactFieldNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !orderFields[key]:
			return badRequest(key, "unknown field (names are case-sensitive)")
		case seen[key]:
			return badRequest(key, "appears twice")
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		if string(value) == "null" {
			// Decoded into the optional fields' pointers, null would read as "absent": an
			// explicit "state": null was accepted as CREATED (found by schemathesis).
			return badRequest(key, "must not be null (leave an optional field out instead)")
		}
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field when there is one.
func jsonError(err error, limit int64) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return badRequest("body", fmt.Sprintf("exceeds %d bytes", limit))
	case errors.As(err, &syntax):
		return badRequest("body", fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err))
	case errors.As(err, &typ):
		return badRequest(typ.Field, fmt.Sprintf("must be a JSON %s", typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "empty or truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "unknown field")
	default:
		return badRequest("body", err.Error())
	}
}
