<?php
/**
 * sonla_directory: the provincial address book of the Sơn La mail system (issue 17, docs/webmail.md).
 *
 * Copyright: Sơn La IT center
 * GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
 *
 * Installed by the sonla.mail.webmail role. A read-only address book of every active mailbox of the province,
 * one group per agency, read from the file sonla-mail-directory builds from the user database
 * (plugins/module_utils/_address_book.py): names, addresses and agencies, no secrets. Each entry has a folded
 * form (lower case, no diacritics, đ as d); what the user types is folded the same way here, so
 * "nguyen van an" finds "Nguyễn Văn An". Every word typed must appear in the name or the address.
 */
class sonla_directory extends rcube_plugin
{
    const ID = 'sonla_directory';

    public function init()
    {
        $this->add_texts('localization/');
        $this->add_hook('addressbooks_list', [$this, 'addressbooks_list']);
        $this->add_hook('addressbook_get', [$this, 'addressbook_get']);
    }

    public function addressbooks_list($args)
    {
        $args['sources'][self::ID] = [
            'id' => self::ID, 'name' => $this->gettext('directory'), 'readonly' => true, 'groups' => true,
            'autocomplete' => true,
        ];
        return $args;
    }

    public function addressbook_get($args)
    {
        if ($args['id'] === self::ID) {
            $path = rcmail::get_instance()->config->get('sonla_directory_path', '/var/lib/sonla-webmail/directory.sqlite');
            $args['instance'] = new sonla_directory_book($path, $this->gettext('directory'));
        }
        return $args;
    }

    /** Lower case without diacritics, as _address_book.fold() in Python: "Nguyễn Văn Đức" -> "nguyen van duc". */
    public static function fold($text)
    {
        $text = Normalizer::normalize(str_replace(['đ', 'Đ'], 'd', (string) $text), Normalizer::FORM_D);
        $text = preg_replace('/\p{Mn}+/u', '', $text);
        return trim(preg_replace('/\s+/u', ' ', mb_strtolower($text, 'UTF-8')));
    }
}

/** The address book itself: Roundcube's read-only addressbook interface over the directory file. */
class sonla_directory_book extends rcube_addressbook
{
    public $primary_key = 'ID';
    public $readonly = true;
    public $groups = true;
    public $ready = false;
    public $coltypes = ['name', 'email', 'organization'];

    private $db;
    private $name;
    private $words = [];
    private $ids = null;
    private $result = null;

    public function __construct($path, $name)
    {
        $this->name = $name;
        try {
            $this->db = new PDO('sqlite:' . $path, null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
            $this->ready = true;
        } catch (PDOException $error) {
            rcube::raise_error(['code' => 500, 'message' => "sonla_directory: cannot open $path: " . $error->getMessage()],
                true, false);
        }
    }

    public function get_name()
    {
        return $this->name;
    }

    public function set_search_set($filter)
    {
        $this->words = is_array($filter) ? $filter['words'] : [];
        $this->ids = is_array($filter) ? $filter['ids'] : null;
    }

    public function get_search_set()
    {
        return $this->words || $this->ids !== null ? ['words' => $this->words, 'ids' => $this->ids] : null;
    }

    public function reset()
    {
        $this->words = [];
        $this->ids = null;
        $this->result = null;
    }

    public function set_group($group_id)
    {
        $this->group_id = $group_id ? (string) $group_id : null;
    }

    public function list_groups($search = null, $mode = 0)
    {
        if (!$this->ready) {
            return [];
        }
        $groups = [];
        foreach ($this->db->query('SELECT id, name FROM agency ORDER BY name') as $row) {
            if ($search === null || $search === '' || strpos(sonla_directory::fold($row['name']), sonla_directory::fold($search)) !== false) {
                $groups[] = ['ID' => $row['id'], 'name' => $row['name']];
            }
        }
        return $groups;
    }

    public function get_group($group_id)
    {
        $query = $this->db->prepare('SELECT id, name FROM agency WHERE id = ?');
        $query->execute([(string) $group_id]);
        $row = $query->fetch();
        return $row ? ['ID' => $row['id'], 'name' => $row['name']] : null;
    }

    /** The WHERE clause and its parameters: the search's words, the chosen agency, records asked for by id. */
    private function where()
    {
        $clauses = ['1'];
        $params = [];
        foreach ($this->words as $word) {
            $clauses[] = "e.folded LIKE ? ESCAPE '\\'";
            $params[] = '%' . addcslashes($word, '%_\\') . '%';
        }
        if ($this->group_id !== null) {
            $clauses[] = 'e.agency = ?';
            $params[] = $this->group_id;
        }
        if ($this->ids !== null) {
            $clauses[] = $this->ids ? 'e.address IN (' . implode(', ', array_fill(0, count($this->ids), '?')) . ')' : '0';
            $params = array_merge($params, $this->ids);
        }
        return [implode(' AND ', $clauses), $params];
    }

    public function list_records($cols = null, $subset = 0, $nocount = false)
    {
        $this->result = new rcube_result_set(0, ($this->list_page - 1) * $this->page_size);
        if (!$this->ready) {
            return $this->result;
        }
        list($where, $params) = $this->where();
        $length = $subset != 0 ? abs($subset) : $this->page_size;
        $first = $this->result->first + ($subset < 0 ? $this->page_size - $length : 0);
        $query = $this->db->prepare("SELECT e.address, e.name, a.name AS agency FROM entry e JOIN agency a ON a.id = e.agency"
            . " WHERE $where ORDER BY e.name, e.address LIMIT " . (int) $length . ' OFFSET ' . (int) $first);
        $query->execute($params);
        foreach ($query as $row) {
            $this->result->add(self::record($row));
        }
        $this->result->count = $nocount ? count($this->result->records) : $this->count()->count;
        return $this->result;
    }

    public function search($fields, $value, $mode = 0, $select = true, $nocount = false, $required = [])
    {
        $this->ids = null;
        if ($fields === $this->primary_key || $fields === 'ID') {  // records asked for by id (a group's members, a copy)
            $ids = array_filter(is_array($value) ? $value : explode(',', $value), 'strlen');
            $this->ids = array_values(array_map([self::class, 'address_of'], $ids));
            $this->words = [];
        } else {
            $values = is_array($value) ? $value : [$value];
            $this->words = array_values(array_filter(explode(' ', sonla_directory::fold(implode(' ', $values))), 'strlen'));
        }
        return $select ? $this->list_records(null, 0, $nocount) : $this->count();
    }

    public function count()
    {
        $count = 0;
        if ($this->ready) {
            list($where, $params) = $this->where();
            $query = $this->db->prepare("SELECT count(*) FROM entry e WHERE $where");
            $query->execute($params);
            $count = (int) $query->fetchColumn();
        }
        return new rcube_result_set($count, ($this->list_page - 1) * $this->page_size);
    }

    public function get_result()
    {
        return $this->result;
    }

    public function get_record($id, $assoc = false)
    {
        $this->result = new rcube_result_set(0);
        if ($this->ready) {
            $query = $this->db->prepare('SELECT e.address, e.name, a.name AS agency FROM entry e'
                . ' JOIN agency a ON a.id = e.agency WHERE e.address = ?');
            $query->execute([self::address_of($id)]);
            if ($row = $query->fetch()) {
                $this->result->add(self::record($row));
                $this->result->count = 1;
            }
        }
        return $assoc ? $this->result->first() : $this->result;
    }

    public function get_record_groups($id)
    {
        $query = $this->db->prepare('SELECT a.id, a.name FROM entry e JOIN agency a ON a.id = e.agency WHERE e.address = ?');
        $query->execute([self::address_of($id)]);
        $groups = [];
        foreach ($query as $row) {
            $groups[$row['id']] = $row['name'];
        }
        return $groups;
    }

    /** Records are known by their address in hex: Roundcube accepts only letters, digits and a few signs in ids. */
    private static function address_of($id)
    {
        return ctype_xdigit((string) $id) && strlen($id) % 2 == 0 ? hex2bin($id) : '';
    }

    private static function record($row)
    {
        return ['ID' => bin2hex($row['address']), 'name' => $row['name'], 'email' => [$row['address']],
                'organization' => $row['agency']];
    }
}
